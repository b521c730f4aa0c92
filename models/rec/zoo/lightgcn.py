"""``lightgcn``: LightGCN (He et al. 2020), ID embeddings propagated over the symmetric-normalised user-item
graph with PyG's ``LGConv``, the representation is the mean of layers 0..K (alpha = 1/(K+1)).

As the authors' PyTorch code: N(0, 0.1) init, BPR on the propagated embeddings, L2 on the batch's ego
(layer-0) embeddings.
"""

from __future__ import annotations

import torch
from torch import nn

from models.layers import LightPropagation, bipartite_edges, sparse_adjacency
from models.rec import MODELS
from models.rec.base import Content, Graph, Loss, RecSizes, l2
from models.rec.zoo._common import Propagated


@MODELS.register("lightgcn")
class LightGcn(Propagated):
    lr = 5e-3

    def __init__(self, sizes: RecSizes, graph: Graph, content: Content | None):
        super().__init__(sizes, graph, content)
        self.user = nn.Embedding(sizes.n_users, sizes.embed_dim)
        self.item = nn.Embedding(sizes.n_items, sizes.embed_dim)
        nn.init.normal_(self.user.weight, std=0.1)
        nn.init.normal_(self.item.weight, std=0.1)
        edges = bipartite_edges(graph.users, graph.items, sizes.n_users)
        # derived from the graph the model is built with: moves with .to(), not saved in the state dict
        self.register_buffer("adj", sparse_adjacency(edges, sizes.n_users + sizes.n_items, "sym"), persistent=False)
        self.propagate = LightPropagation(sizes.layers)

    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.propagate(torch.cat([self.user.weight, self.item.weight]), self.adj)
        return out.split([self.sizes.n_users, self.sizes.n_items])

    def loss(self, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor) -> Loss:
        rank, _, _ = self.ranking(users, pos, neg)
        return Loss(rank, l2(self.user(users), self.item(pos), self.item(neg).flatten(0, 1)))

"""``mmgcn``: MMGCN (Wei et al. 2019): one graph convolution network per modality over the user-item graph.

In each modality's network a user starts from a modality-specific preference vector and an item from its
projected features (L2-normalised); every layer l combines the mean of the neighbours' transformed vectors
(h) with the node's own transformed vector plus its ID embedding (x_hat): x = LeakyReLU(G h + x_hat). The
final user and item representations are the mean over modalities (MMRec's reference; the paper sums).
Xavier-normal init; BPR; L2 on the batch's ID embeddings and modality preferences. A cold item has no
neighbours and a zero ID row: its representation comes from its features through the per-node layers.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.functional import leaky_relu, normalize

from models.layers import SparseMatmul, bipartite_edges, sparse_adjacency, transpose_csr
from models.rec import MODELS
from models.rec.base import Content, Graph, Loss, RecSizes, l2
from models.rec.zoo._common import Propagated, require_content, seen_items


class ModalityGcn(nn.Module):
    """One modality's network: preferences, feature projection and ``layers`` (conv, self, combine) triples."""

    def __init__(self, n_users: int, d_feat: int, dim: int, layers: int):
        super().__init__()
        self.preference = nn.Parameter(nn.init.xavier_normal_(torch.empty(n_users, dim)))
        self.project = nn.Linear(d_feat, dim)
        self.conv = nn.ParameterList(nn.init.xavier_normal_(torch.empty(dim, dim)) for _ in range(layers))
        self.self_ = nn.ModuleList(nn.Linear(dim, dim) for _ in range(layers))
        self.combine = nn.ModuleList(nn.Linear(dim, dim) for _ in range(layers))
        for lin in [self.project, *self.self_, *self.combine]:
            nn.init.xavier_normal_(lin.weight)

    def forward(self, feats, present, ids, adj: torch.Tensor, adj_t: torch.Tensor) -> torch.Tensor:
        x = normalize(torch.cat([self.preference, self.project(feats) * present]), dim=1)  # (U + I, D)
        for conv, own, combine in zip(self.conv, self.self_, self.combine):
            h = leaky_relu(SparseMatmul.apply(adj, adj_t, x @ conv))  # mean over neighbours of x_j W
            x = leaky_relu(combine(h) + leaky_relu(own(x)) + ids)
        return x


@MODELS.register("mmgcn")
class Mmgcn(Propagated):
    def __init__(self, sizes: RecSizes, graph: Graph, content: Content | None):
        super().__init__(sizes, graph, content)
        content = require_content("mmgcn", content)
        self.names = sorted(content)
        for k, name in enumerate(self.names):
            self.register_buffer(f"x{k}", content[name][0].float())
            self.register_buffer(f"m{k}", content[name][1].float().unsqueeze(1))
        n_nodes = sizes.n_users + sizes.n_items
        self.ids = nn.Parameter(nn.init.xavier_normal_(torch.empty(n_nodes, sizes.embed_dim)))
        self.gcns = nn.ModuleList(
            ModalityGcn(sizes.n_users, content[n][0].shape[1], sizes.embed_dim, sizes.layers) for n in self.names
        )
        seen = torch.cat([torch.ones(sizes.n_users, 1), seen_items(graph, sizes.n_items)])
        self.register_buffer("seen", seen)  # users and warm items keep their ID row; cold items' is zero
        edges = bipartite_edges(graph.users, graph.items, sizes.n_users)
        self.register_buffer("adj", sparse_adjacency(edges, n_nodes, "mean"), persistent=False)
        self.register_buffer("adj_t", transpose_csr(self.adj), persistent=False)
        self.impute_cold_items(content, graph)

    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        ids = self.ids * self.seen
        outs = [
            gcn(getattr(self, f"x{k}"), getattr(self, f"m{k}"), ids, self.adj, self.adj_t)
            for k, gcn in enumerate(self.gcns)
        ]
        return torch.stack(outs).mean(0).split([self.sizes.n_users, self.sizes.n_items])

    def loss(self, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor) -> Loss:
        rank, _, _ = self.ranking(users, pos, neg)
        items = self.sizes.n_users + torch.cat([pos, neg.flatten()])
        prefs = [gcn.preference[users] for gcn in self.gcns]
        return Loss(rank, l2(self.ids[users], self.ids[items] * self.seen[items], *prefs))

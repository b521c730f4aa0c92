"""``metammf``: MetaMMF (Liu et al., "Dynamic multimodal fusion via meta-learning towards micro-video
recommendation"): item-specific multimodal fusion on a graph backbone, as the authors' code (MetaMMF_GCN).

A meta-learner (an MLP) maps each item's concatenated modality features f_i to a small signal s_i; each
layer of the fusion network is a meta layer whose weight is that item's own, W_i = M + sum_s s_is T_s
(``models.layers.MetaLinear``), LeakyReLU between layers (hidden sizes ``sizes.mlp``). The item node is
[fused content (D/2), ID embedding (D/2, zero for a cold item)], the user node a free embedding (D); both go
through ``sizes.layers`` GraphSAGE layers (PyG ``SAGEConv``, mean over neighbours) with dropout after the
first. Xavier-uniform init; BPR; L2 on the batch's ID rows (the authors use Adam weight decay 1e-6).
``metammf_cp`` swaps the meta layers for the paper's CP-decomposed ones.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.functional import dropout, leaky_relu

from models.layers import MLP, MetaLinear, bipartite_edges, quiet_graph_warnings, sparse_adjacency
from models.rec import MODELS
from models.rec.base import Content, Graph, Loss, RecSizes, l2
from models.rec.zoo._common import Propagated, require_content, seen_items, stacked_content

SIGNAL_DIM = 5  # the meta-learner's output: the reference code's s_dim


@MODELS.register("metammf")
class MetaMmf(Propagated):
    name = "metammf"  # for messages (the subclass has its own)

    def __init__(self, sizes: RecSizes, graph: Graph, content: Content | None):
        super().__init__(sizes, graph, content)
        with quiet_graph_warnings():
            from torch_geometric.nn import SAGEConv

        d, half = sizes.embed_dim, sizes.embed_dim // 2
        self.register_buffer("features", stacked_content(require_content(self.name, content)))
        f = self.features.shape[1]
        # the reference's meta-learner is f -> f -> S; f x f is too wide for raw features, hence mlp[0]
        self.meta = MLP(f, sizes.mlp[:1], 0.0, out=SIGNAL_DIM)
        dims = [f, *sizes.mlp, d - half]
        self.fusion = nn.ModuleList(self.meta_layer(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.user = nn.Parameter(nn.init.xavier_uniform_(torch.empty(sizes.n_users, d)))
        self.item = nn.Parameter(nn.init.xavier_uniform_(torch.empty(sizes.n_items, half)))
        self.register_buffer("seen", seen_items(graph, sizes.n_items))
        edges = bipartite_edges(graph.users, graph.items, sizes.n_users)
        # SAGEConv sums over this row-normalised adjacency: the mean over neighbours, on the fast CSR path
        self.register_buffer("adj", sparse_adjacency(edges, sizes.n_users + sizes.n_items, "mean"), persistent=False)
        self.convs = nn.ModuleList(SAGEConv(d, d, aggr="sum") for _ in range(sizes.layers))
        self.impute_cold_items(content, graph)

    def meta_layer(self, d_in: int, d_out: int) -> nn.Module:
        return MetaLinear(SIGNAL_DIM, d_in, d_out)

    def signal(self, items: torch.Tensor | None = None) -> torch.Tensor:
        """The meta-learner's output for ``items`` (all when None): ``(N, SIGNAL_DIM)``."""
        return self.meta(self.features if items is None else self.features[items])

    def fused(self) -> torch.Tensor:
        """Every item's content through its own fusion network: ``(n_items, D/2)``."""
        s, x = self.signal(), self.features
        for k, layer in enumerate(self.fusion):
            x = layer(s, x) if k == 0 else layer(s, leaky_relu(x))
        return x

    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.cat([self.user, torch.cat([self.fused(), self.item * self.seen], dim=1)])
        for k, conv in enumerate(self.convs):
            x = conv(x, self.adj)
            if k < len(self.convs) - 1:
                x = dropout(leaky_relu(x), self.sizes.dropout, self.training)
        return x.split([self.sizes.n_users, self.sizes.n_items])

    def loss(self, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor) -> Loss:
        rank, _, _ = self.ranking(users, pos, neg)
        items = torch.cat([pos, neg.flatten()])
        return Loss(rank, l2(self.user[users], self.item[items] * self.seen[items]))

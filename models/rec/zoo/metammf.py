"""``metammf``: MetaMMF (Liu et al., "Dynamic multimodal fusion via meta-learning towards micro-video
recommendation"): item-specific multimodal fusion, here as the content branch of a LightGCN backbone
(``ContentOnLightGcn``).

An item's concatenated modality features f_i are first mapped to ``sizes.mlp[0]`` dims (a shared linear
map, h_i); a meta-learner (an MLP) maps h_i to a small signal s_i; each later layer of the fusion network
is a meta layer whose weight is that item's own, W_i = M + sum_s s_is T_s (``models.layers.MetaLinear``),
LeakyReLU between layers (sizes ``sizes.mlp[1:]``, output embed_dim / 2); the stage's default ``mlp`` (32,)
gives one meta layer, 32 -> 32. A user's branch vector is the mean of its training items' fused vectors;
both then take one mean-aggregation graph step (the authors' GraphSAGE backbone, without its weights), with
dropout (``sizes.dropout``, 0 by default) before it.

Deliberate differences from the authors' code: their item node is [fused content, ID] through two
SAGEConv layers; here the IDs are LightGCN's and the fused content enters through a zero-initialised map,
so the model starts as LightGCN (issue 23 measured the original below popularity on sparse real data); the
first layer is shared, not per item, and the meta-learner reads its output (theirs reads f_i, and their
meta layers start at f_i's width): per-item layers on raw widths made an epoch 7x LightGCN's. And one meta
layer, not their four: two (``mlp`` (64, 32)) ranked validation the same on both synthetic profiles at
2.7x LightGCN's epoch, one at 2.1x (docs/benchmarks.md, Top-K fifth pass).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.functional import dropout, leaky_relu

from models.layers import (
    MLP,
    MetaLinear,
    RowsMatmul,
    SparseMatmul,
    bipartite_edges,
    csr_block,
    csr_rows,
    sparse_adjacency,
    transpose_csr,
)
from models.rec import MODELS
from models.rec.base import Content, Graph, RecSizes
from models.rec.zoo._common import ContentOnLightGcn, require_content, stacked_content

SIGNAL_DIM = 5  # the meta-learner's output: the reference code's s_dim


@MODELS.register("metammf")
class MetaMmf(ContentOnLightGcn):
    name = "metammf"  # for messages (the subclass has its own)
    # 0.1 until issue 23's sixth pass: with the content profile blended in, no dropout ranks validation higher on
    # both profiles and trains a cheaper epoch (docs/benchmarks.md)
    dropout = 0.0
    mlp = (32,)

    def __init__(self, sizes: RecSizes, graph: Graph, content: Content | None):
        super().__init__(sizes, graph, content)
        if not sizes.mlp:  # its first size is the shared map's width
            raise ValueError(f"top-K model {self.name!r} needs at least one mlp size, got {list(sizes.mlp)}")
        self.register_buffer("features", stacked_content(require_content(self.name, content)))
        self.reduce = nn.Linear(self.features.shape[1], sizes.mlp[0])
        self.meta = MLP(sizes.mlp[0], sizes.mlp[:1], 0.0, out=SIGNAL_DIM)
        dims = [*sizes.mlp, self.branch_dim]
        self.fusion = nn.ModuleList(self.meta_layer(a, b) for a, b in zip(dims[:-1], dims[1:]))
        edges = bipartite_edges(graph.users, graph.items, sizes.n_users)
        n_nodes = sizes.n_users + sizes.n_items
        self.register_buffer("mean_adj", sparse_adjacency(edges, n_nodes, "mean"), persistent=False)
        self.register_buffer("mean_adj_t", transpose_csr(self.mean_adj), persistent=False)
        # its user rows alone, (U, I): a user's branch vector is the mean of its items' fused vectors
        self.register_buffer("user_mean", csr_block(self.mean_adj, sizes.n_users), persistent=False)
        self.register_buffer("user_mean_t", transpose_csr(self.user_mean), persistent=False)

    def meta_layer(self, d_in: int, d_out: int) -> nn.Module:
        return MetaLinear(SIGNAL_DIM, d_in, d_out)

    def signal(self, items: torch.Tensor | None = None) -> torch.Tensor:
        """The meta-learner's output for ``items`` (all when None): ``(N, SIGNAL_DIM)``."""
        return self.meta(self.reduce(self.features if items is None else self.features[items]))

    def fused(self) -> torch.Tensor:
        """Every item's content through its own fusion network: ``(n_items, embed_dim / 2)``."""
        x = self.reduce(self.features)
        s = self.meta(x)
        for layer in self.fusion:
            x = layer(s, leaky_relu(x))
        return x

    def branch(self, ids: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
        items = self.fused()
        users = SparseMatmul.apply(self.user_mean, self.user_mean_t, items)  # each user's mean of its items
        x = dropout(torch.cat([users, items]), self.sizes.dropout, self.training)
        if rows is None:
            return x + SparseMatmul.apply(self.mean_adj, self.mean_adj_t, x)
        return x[rows] + RowsMatmul.apply(csr_rows(self.mean_adj, rows), self.mean_adj_t, rows, x)

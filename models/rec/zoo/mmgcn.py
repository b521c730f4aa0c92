"""``mmgcn``: MMGCN (Wei et al. 2019): one graph convolution network per modality over the user-item graph,
here as the content branch of a LightGCN backbone (``ContentOnLightGcn``).

In each modality's network (``LAYERS`` layers, embed_dim / 2 wide) a user starts from a modality-specific
preference vector and an item from its projected features (L2-normalised); every layer combines the mean of the neighbours' transformed vectors
(h) with the node's own transformed vector: x = LeakyReLU(combine(G h) + LeakyReLU(own(x))). The branch is
the mean over modalities (MMRec's reference; the paper sums). Xavier-normal init inside the branch.

Deliberate difference: MMGCN adds a free ID embedding inside every modality's layers; here the IDs are
LightGCN's, outside the branch, and the branch enters through a zero-initialised map, so the model starts
as LightGCN and content adds what the training positives support (docs/stages/rec.md, issue 23). One layer
of half width per modality, and in training the last layer computed for the batch's nodes alone (from
every node's input; ``ContentOnLightGcn.loss``), keep an epoch near 2x LightGCN's.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.functional import leaky_relu

from models.layers import (
    RowsMatmul,
    SparseMatmul,
    bipartite_edges,
    csr_rows,
    sparse_adjacency,
    transpose_csr,
    unit_rows,
)
from models.rec import MODELS
from models.rec.base import Content, Graph, RecSizes
from models.rec.zoo._common import ContentOnLightGcn, require_content

LAYERS = 1  # layers of each modality's network (MMRec: 3); the LightGCN backbone has sizes.layers


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

    def forward(self, feats, present, adj: torch.Tensor, adj_t: torch.Tensor, rows=None, rows_adj=None) -> torch.Tensor:
        """Every node's output, or the ``rows``' only (their last layer reads their neighbours alone;
        ``rows_adj``: ``csr_rows(adj, rows)``)."""
        x = unit_rows(torch.cat([self.preference, self.project(feats) * present]))  # (U + I, D)
        for k, (conv, own, combine) in enumerate(zip(self.conv, self.self_, self.combine)):
            if rows is not None and k == len(self.conv) - 1:
                # (A x)[rows] W = (A x W)[rows]: the matmul on the rows alone
                h = leaky_relu(RowsMatmul.apply(rows_adj, adj_t, rows, x) @ conv)
                return leaky_relu(combine(h) + leaky_relu(own(x[rows])))
            h = leaky_relu(SparseMatmul.apply(adj, adj_t, x @ conv))  # mean over neighbours of x_j W
            x = leaky_relu(combine(h) + leaky_relu(own(x)))
        return x


@MODELS.register("mmgcn")
class Mmgcn(ContentOnLightGcn):
    name = "mmgcn"

    def __init__(self, sizes: RecSizes, graph: Graph, content: Content | None):
        super().__init__(sizes, graph, content)
        content = require_content(self.name, content)
        self.names = sorted(content)
        for k, name in enumerate(self.names):
            self.register_buffer(f"x{k}", content[name][0].float())
            self.register_buffer(f"m{k}", content[name][1].float().unsqueeze(1))
        n_nodes = sizes.n_users + sizes.n_items
        self.gcns = nn.ModuleList(
            ModalityGcn(sizes.n_users, content[n][0].shape[1], self.branch_dim, LAYERS) for n in self.names
        )
        edges = bipartite_edges(graph.users, graph.items, sizes.n_users)
        self.register_buffer("mean_adj", sparse_adjacency(edges, n_nodes, "mean"), persistent=False)
        self.register_buffer("mean_adj_t", transpose_csr(self.mean_adj), persistent=False)

    def branch(self, ids: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
        rows_adj = None if rows is None else csr_rows(self.mean_adj, rows)  # one row slice for every modality
        outs = [
            gcn(getattr(self, f"x{k}"), getattr(self, f"m{k}"), self.mean_adj, self.mean_adj_t, rows, rows_adj)
            for k, gcn in enumerate(self.gcns)
        ]
        return torch.stack(outs).mean(0)

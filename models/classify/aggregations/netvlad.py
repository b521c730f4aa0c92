"""``netvlad``: soft assignment of every step to K learned centres, residuals summed (Arandjelovic et al.),
intra- and L2-normalised."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from models.classify import AGGREGATIONS
from models.classify.aggregations._base import Aggregation


@AGGREGATIONS.register("netvlad")
class NetVLAD(Aggregation):
    def __init__(self, dim: int, clusters: int):
        super().__init__(dim, clusters)
        if clusters < 1:
            raise ValueError(f"NetVLAD needs at least one cluster, got {clusters}")
        self.assign = nn.Linear(dim, clusters)
        self.centres = nn.Parameter(torch.randn(clusters, dim) * 0.1)
        self.d_out = clusters * dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = torch.softmax(self.assign(x), dim=-1)  # (B, T, K) soft assignment
        # sum_t a_tk (x_t - c_k) = (a^T x)_k - (sum_t a_tk) c_k
        v = a.transpose(1, 2) @ x - a.sum(dim=1).unsqueeze(-1) * self.centres  # (B, K, D)
        v = F.normalize(v, dim=-1)  # intra-normalisation: every centre counts alike
        return F.normalize(v.flatten(1), dim=-1)  # (B, K*D), unit L2 norm

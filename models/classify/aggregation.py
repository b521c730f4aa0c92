"""Aggregations of a sequence of local features ``(B, T, D)`` into one video descriptor ``(B, d_out)``.

``mean`` is plain mean pooling; ``attention`` weights the steps by a softmax of a learned score
(weights sum to one: mean pooling is the case of equal scores); ``netvlad`` soft-assigns every
step to K learned centres and sums the residuals (Arandjelovic et al.), intra- and L2-normalised.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from pipeline.core.config import ConfigError
class Aggregation(nn.Module):
    d_out: int

    def __init__(self, dim: int, clusters: int):
        super().__init__()


class MeanPool(Aggregation):
    def __init__(self, dim: int, clusters: int):
        super().__init__(dim, clusters)
        self.d_out = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=1)  # (B, T, D) -> (B, D)


class AttentionPool(Aggregation):
    def __init__(self, dim: int, clusters: int):
        super().__init__(dim, clusters)
        self.score = nn.Sequential(nn.Linear(dim, dim), nn.Tanh(), nn.Linear(dim, 1, bias=False))
        self.d_out = dim

    def weights(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.score(x).squeeze(-1), dim=1)  # (B, T), each row sums to 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.weights(x).unsqueeze(-1) * x).sum(dim=1)  # (B, D)


class NetVLAD(Aggregation):
    def __init__(self, dim: int, clusters: int):
        super().__init__(dim, clusters)
        if clusters < 1:
            raise ConfigError(f"NetVLAD needs at least one cluster, got {clusters}")
        self.assign = nn.Linear(dim, clusters)
        self.centres = nn.Parameter(torch.randn(clusters, dim) * 0.1)
        self.d_out = clusters * dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = torch.softmax(self.assign(x), dim=-1)  # (B, T, K) soft assignment
        # sum_t a_tk (x_t - c_k) = (a^T x)_k - (sum_t a_tk) c_k
        v = a.transpose(1, 2) @ x - a.sum(dim=1).unsqueeze(-1) * self.centres  # (B, K, D)
        v = F.normalize(v, dim=-1)  # intra-normalisation: every centre counts alike
        return F.normalize(v.flatten(1), dim=-1)  # (B, K*D), unit L2 norm


AGGREGATIONS: dict[str, type[Aggregation]] = {"mean": MeanPool, "attention": AttentionPool, "netvlad": NetVLAD}


def build_aggregation(name: str, dim: int, clusters: int) -> Aggregation:
    if name not in AGGREGATIONS:
        raise ConfigError(f"unknown aggregation {name!r}; valid names: {', '.join(sorted(AGGREGATIONS))}")
    return AGGREGATIONS[name](dim, clusters)

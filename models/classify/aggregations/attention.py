"""``attention``: the steps weighted by a softmax of a learned score (equal scores: mean pooling)."""

from __future__ import annotations

import torch
from torch import nn

from models.classify import AGGREGATIONS
from models.classify.aggregations._base import Aggregation


@AGGREGATIONS.register("attention")
class AttentionPool(Aggregation):
    def __init__(self, dim: int, clusters: int):
        super().__init__(dim, clusters)
        self.score = nn.Sequential(nn.Linear(dim, dim), nn.Tanh(), nn.Linear(dim, 1, bias=False))
        self.d_out = dim

    def weights(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.score(x).squeeze(-1), dim=1)  # (B, T), each row sums to 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.weights(x).unsqueeze(-1) * x).sum(dim=1)  # (B, D)

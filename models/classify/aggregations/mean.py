"""``mean``: plain mean pooling over the steps."""

from __future__ import annotations

import torch

from models.classify import AGGREGATIONS
from models.classify.aggregations._base import Aggregation


@AGGREGATIONS.register("mean")
class MeanPool(Aggregation):
    def __init__(self, dim: int, clusters: int):
        super().__init__(dim, clusters)
        self.d_out = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=1)  # (B, T, D) -> (B, D)

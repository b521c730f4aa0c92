"""``fm``: factorisation machine, linear terms plus all pairwise inner products of field vectors."""

from __future__ import annotations

import torch

from models.ctr import MODELS
from models.ctr.base import CtrModel
from models.layers import fm_pairwise


@MODELS.register("fm")
class FM(CtrModel):
    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        fields = self.embed(batch)  # (B, F, D)
        return self.linear(batch, fields) + fm_pairwise(fields)

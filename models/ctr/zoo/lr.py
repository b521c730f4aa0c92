"""``lr``: logistic regression on every field value (and a linear map of the content vector)."""

from __future__ import annotations

import torch

from models.ctr import MODELS
from models.ctr.base import CtrModel


@MODELS.register("lr")
class LR(CtrModel):
    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        fields = self.embed(batch) if self.content is not None else None
        return self.linear(batch, fields)  # (B,)

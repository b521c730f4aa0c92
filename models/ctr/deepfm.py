"""``deepfm``: FM plus an MLP over the concatenated field vectors (shared embeddings)."""
from __future__ import annotations

import torch

from models.ctr.base import CtrModel, register
from models.layers import MLP, fm_pairwise


@register("deepfm")
class DeepFM(CtrModel):
    def __init__(self, spec, cfg, content):
        super().__init__(spec, cfg, content)
        self.mlp = MLP(self.n_fields * cfg.embed_dim, cfg.mlp, cfg.dropout)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        fields = self.embed(batch)  # (B, F, D)
        deep = self.mlp(fields.flatten(1)).squeeze(-1)  # (B,)
        return self.linear(batch, fields) + fm_pairwise(fields) + deep

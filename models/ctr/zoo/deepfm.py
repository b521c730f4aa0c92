"""``deepfm``: FM plus an MLP over the concatenated field vectors (shared embeddings)."""

from __future__ import annotations

import torch

from models.ctr import MODELS
from models.ctr.base import CtrModel
from models.layers import MLP, fm_pairwise


@MODELS.register("deepfm")
class DeepFM(CtrModel):
    def __init__(self, spec, sizes, content):
        super().__init__(spec, sizes, content)
        self.mlp = MLP(self.n_fields * sizes.embed_dim, sizes.mlp, sizes.dropout)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        fields = self.embed(batch)  # (B, F, D)
        deep = self.mlp(fields.flatten(1)).squeeze(-1)  # (B,)
        return self.linear(batch, fields) + fm_pairwise(fields) + deep

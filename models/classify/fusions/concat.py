"""``concat``: the codes concatenated, an absent token replaced by its slot's learned "missing" embedding."""

from __future__ import annotations

import torch
from torch import nn

from models.classify import FUSIONS
from models.classify.fusions._base import Fusion


@FUSIONS.register("concat")
class ConcatFusion(Fusion):
    def __init__(self, n_tokens: int, dim: int):
        super().__init__(n_tokens, dim)
        self.missing = nn.Parameter(torch.zeros(n_tokens, dim))
        nn.init.normal_(self.missing, std=0.1)
        self.d_out = n_tokens * dim

    def fill(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Absent tokens replaced by their slot's learned embedding, flattened to ``(B, M*D)``."""
        return torch.where(mask.unsqueeze(-1), tokens, self.missing.expand_as(tokens)).flatten(1)

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.fill(tokens, mask)  # (B, M*D)

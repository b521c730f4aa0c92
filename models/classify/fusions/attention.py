"""``attention``: the codes weighted by a softmax of a learned score over the present tokens (absent ones:
exactly zero weight), then concatenated in their slots as ``concat`` does."""

from __future__ import annotations

import torch
from torch import nn

from models.classify import FUSIONS
from models.classify.fusions.concat import ConcatFusion


@FUSIONS.register("attention")
class AttentionFusion(ConcatFusion):
    def __init__(self, n_tokens: int, dim: int):
        super().__init__(n_tokens, dim)
        self.score = nn.Sequential(nn.Linear(dim, dim), nn.Tanh(), nn.Linear(dim, 1, bias=False))

    def weights(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``(B, M)`` softmax weights over the present tokens (each row sums to 1; absent: exactly 0)."""
        safe = torch.where(mask.unsqueeze(-1), tokens, 0.0)  # junk in an absent token must not reach a score
        s = self.score(safe).squeeze(-1).masked_fill(~mask, float("-inf"))  # (B, M)
        return torch.softmax(s, dim=1).nan_to_num(0.0)  # a row with no token present: all zero, not NaN

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        # x n_present: equal weights leave the codes at their scale, whatever the number present
        w = self.weights(tokens, mask) * mask.sum(1, keepdim=True)  # (B, M)
        return self.fill(w.unsqueeze(-1) * torch.where(mask.unsqueeze(-1), tokens, 0.0), mask)  # (B, M*D)

"""Fusions of per-modality codes ``(B, M, D)`` with a presence mask ``(B, M)`` into one vector.

``concat`` concatenates the codes; ``attention`` weights them by a softmax of a learned score
over the present tokens, then concatenates the weighted codes (the modalities keep their own
slots, so one code cannot drown the other in a sum). A token whose modality is absent (a video
without audio) never contributes its values: attention gives it exactly zero weight, and both
put a learned "missing" embedding in its slot -- never zeros pretending to be a signal.
"""
from __future__ import annotations

import torch
from torch import nn

from pipeline.core.config import ConfigError
class Fusion(nn.Module):
    d_out: int

    def __init__(self, n_tokens: int, dim: int):
        super().__init__()


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


FUSIONS: dict[str, type[Fusion]] = {"concat": ConcatFusion, "attention": AttentionFusion}


def build_fusion(name: str, n_tokens: int, dim: int) -> Fusion:
    if name not in FUSIONS:
        raise ConfigError(f"unknown fusion {name!r}; valid names: {', '.join(sorted(FUSIONS))}")
    return FUSIONS[name](n_tokens, dim)

"""Fusions of per-modality codes ``(B, M, D)`` with a presence mask ``(B, M)`` into one vector.

A token whose modality is absent (a video without audio) never contributes its values:
``attention`` gives it exactly zero weight (softmax over present tokens only), ``concat``
puts a learned "missing" embedding in its slot -- never zeros pretending to be a signal.
"""
from __future__ import annotations

import torch
from torch import nn

from pipeline.config import ConfigError


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

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        filled = torch.where(mask.unsqueeze(-1), tokens, self.missing.expand_as(tokens))  # (B, M, D)
        return filled.flatten(1)  # (B, M*D)


class AttentionFusion(Fusion):
    def __init__(self, n_tokens: int, dim: int):
        super().__init__(n_tokens, dim)
        self.score = nn.Sequential(nn.Linear(dim, dim), nn.Tanh(), nn.Linear(dim, 1, bias=False))
        self.d_out = dim

    def weights(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``(B, M)`` softmax weights over the present tokens (each row sums to 1; absent: exactly 0)."""
        s = self.score(tokens).squeeze(-1).masked_fill(~mask, float("-inf"))  # (B, M)
        return torch.softmax(s, dim=1).nan_to_num(0.0)  # a row with no token present: all zero, not NaN

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        w = self.weights(tokens, mask).unsqueeze(-1)  # (B, M, 1)
        # where(): an absent token's (junk) values must not reach the sum, even as 0 * inf
        return torch.where(mask.unsqueeze(-1), w * tokens, 0.0).sum(dim=1)  # (B, D)


FUSIONS: dict[str, type[Fusion]] = {"concat": ConcatFusion, "attention": AttentionFusion}


def build_fusion(name: str, n_tokens: int, dim: int) -> Fusion:
    if name not in FUSIONS:
        raise ConfigError(f"unknown fusion {name!r}; valid names: {', '.join(sorted(FUSIONS))}")
    return FUSIONS[name](n_tokens, dim)

"""``din``: Deep Interest Network: the history pooled by attention w.r.t. the target item, then an MLP.

Items (target and behaviours) are their ID embedding plus, with content, their fused modality vector.
"""
from __future__ import annotations

import torch

from models.ctr.base import CtrModel, register
from models.layers import MLP, TargetAttention


@register("din")
class DIN(CtrModel):
    def __init__(self, spec, cfg, content):
        super().__init__(spec, cfg, content)
        self.attention = TargetAttention(cfg.embed_dim, cfg.attention_dim)
        self.mlp = MLP((self.n_fields + 2) * cfg.embed_dim, cfg.mlp, cfg.dropout)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        hist = batch["hist"][:, : max(int(batch["hist_len"].max()), 1)]  # (B, T): histories are left-aligned
        ids, content = self.target_and_history(batch, hist)  # (B, 1 + T, D) each
        fields = self.embed(batch, None if content is None else content[:, 0], ids[:, 0])  # (B, F, D)
        items = ids if content is None else ids + content  # an item = ID vector + fused content
        target, behaviours = items[:, 0], items[:, 1:]  # (B, D), (B, T, D)
        interest = self.attention(target, behaviours, hist > 0)  # (B, D)
        x = torch.cat([fields.flatten(1), target, interest], dim=1)
        return self.linear(batch, fields) + self.mlp(x).squeeze(-1)

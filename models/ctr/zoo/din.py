"""``din``: Deep Interest Network: the history pooled by attention w.r.t. the target item, then an MLP.

Items (target and behaviours) are their ID embedding plus, with content, their fused modality vector.
"""

from __future__ import annotations

import torch

from models.ctr import MODELS
from models.ctr.base import CtrModel
from models.layers import MLP, TargetAttention


@MODELS.register("din")
class DIN(CtrModel):
    def __init__(self, spec, sizes, content):
        super().__init__(spec, sizes, content)
        self.attention = TargetAttention(sizes.embed_dim, sizes.attention_dim)
        self.mlp = MLP((self.n_fields + 2) * sizes.embed_dim, sizes.mlp, sizes.dropout)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        hist = batch["hist"][:, : max(int(batch["hist_len"].max()), 1)]  # (B, T): histories are left-aligned
        ids, content = self.target_and_history(batch, hist)  # (B, 1 + T, D) each
        fields = self.embed(batch, None if content is None else content[:, 0], ids[:, 0])  # (B, F, D)
        items = ids if content is None else ids + content  # an item = ID vector + fused content
        target, behaviours = items[:, 0], items[:, 1:]  # (B, D), (B, T, D)
        interest = self.attention(target, behaviours, hist > 0)  # (B, D)
        x = torch.cat([fields.flatten(1), target, interest], dim=1)
        return self.linear(batch, fields) + self.mlp(x).squeeze(-1)

"""``din``: Deep Interest Network: the history pooled by attention w.r.t. the target item, then an MLP.

With content, a second attention pools the behaviours' fused content vectors w.r.t. the target's content,
and that content interest joins the MLP beside the ID interest; the target's content is also its own field.
The ID attention is the same as without content: summing content into every item's ID vector (one
attention over ID + content) scored below no content on the easy profile, one seed in three falling
behind, and content at the target only (or the behaviours' share learned from 0) scored below it on the
realistic one (docs/benchmarks.md, the CTR content tables).
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
        self.add_content_attention(sizes)
        has_content = self.content is not None
        self.mlp = MLP((self.n_fields + 2 + has_content) * sizes.embed_dim, sizes.mlp, sizes.dropout)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        hist = batch["hist"][:, : max(int(batch["hist_len"].max()), 1)]  # (B, T): histories are left-aligned
        ids, content = self.target_and_history(batch, hist)  # (B, 1 + T, D) each
        fields = self.embed(batch, None if content is None else content[:, 0], ids[:, 0])  # (B, F, D)
        interest = self.attention(ids[:, 0], ids[:, 1:], hist > 0)  # (B, D)
        x = torch.cat([fields.flatten(1), ids[:, 0], interest, *self.content_interests(content, hist)], dim=1)
        return self.linear(batch, fields) + self.mlp(x).squeeze(-1)

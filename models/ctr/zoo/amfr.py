"""``amfr``: the first paper's attentive multimodal feature-crossing model.

Fields (IDs, side features, and the item content fused by user-guided attention over modalities)
go through multi-head self-attention (the internal representation) and, separately, through an
attention-weighted sum of all pairwise element-wise products (AFM pooling); both, concatenated,
feed an MLP, plus the linear terms.
"""

from __future__ import annotations

import torch

from models.ctr import MODELS
from models.ctr.base import CtrModel
from models.layers import MLP, AttentionalPairwise, SelfAttentionBlock, UserGuidedFusion


@MODELS.register("amfr")
class AMFR(CtrModel):
    def __init__(self, spec, sizes, content):
        super().__init__(spec, sizes, content)
        d = sizes.embed_dim
        self.fusion = UserGuidedFusion(d, sizes.attention_dim) if content else None
        self.self_attention = SelfAttentionBlock(d, sizes.heads, sizes.dropout)
        self.pairwise = AttentionalPairwise(self.n_fields, d, sizes.attention_dim)
        self.mlp = MLP(self.n_fields * d + d, sizes.mlp, sizes.dropout)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        fused = None
        if self.fusion is not None:
            modal, mask = self.modalities(batch["item"])  # (B, M, D), (B, M)
            fused = self.fusion(self.fields.user(batch["user"]), modal, mask)  # (B, D)
        fields = self.embed(batch, fused)  # (B, F, D)
        x = torch.cat([self.self_attention(fields).flatten(1), self.pairwise(fields)], dim=1)
        return self.linear(batch, fields) + self.mlp(x).squeeze(-1)

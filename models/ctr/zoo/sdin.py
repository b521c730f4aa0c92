"""``sdin``: the MMIE paper's session-based interest model (its best one).

The history arrives cut into sessions (``sess``: ``(B, S, L)`` item codes, the S most recent
sessions and the L most recent behaviours of each, oldest first; ``pipeline.ctr.data.sessions``).
A behaviour is its item ID embedding plus its fused multimodal vector. Within each session,
self-attention over its behaviours (with a learned position-in-session and session-slot bias, as
DSIN's bias encoding) extracts the session's interest, pooled over its behaviours; across the
sessions, a GRU and an attention-updated GRU driven by target attention evolve the interest
(as ``mmie`` does over single behaviours); an MLP reads [fields, target item, evolved interest].
"""

from __future__ import annotations

import torch
from torch import nn

from models.ctr import MODELS
from models.ctr.base import CtrModel
from models.layers import AUGRU, MLP, SelfAttentionBlock, TargetAttention, masked_mean


@MODELS.register("sdin")
class SDIN(CtrModel):
    uses_sessions = True

    def __init__(self, spec, sizes, content):
        super().__init__(spec, sizes, content)
        d = sizes.embed_dim
        self.position = nn.Parameter(torch.zeros(sizes.session_length, d))  # bias per place in a session
        self.slot = nn.Parameter(torch.zeros(sizes.session_count, 1, d))  # bias per session slot
        self.intra = SelfAttentionBlock(d, sizes.heads, sizes.dropout)
        self.gru = nn.GRU(d, d, batch_first=True)
        self.attention = TargetAttention(d, sizes.attention_dim)
        self.evolve = AUGRU(d, d)
        self.mlp = MLP((self.n_fields + 2) * d, sizes.mlp, sizes.dropout)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        sess = batch["sess"]  # (B, S, L), sessions left-aligned: padding sessions trail
        b, n_slots, length = sess.shape
        ids, content = self.target_and_history(batch, sess.flatten(1))  # (B, 1 + S*L, D) each
        fields = self.embed(batch, None if content is None else content[:, 0], ids[:, 0])  # (B, F, D)
        items = ids if content is None else ids + content  # a behaviour = ID vector + fused content
        target = items[:, 0]  # (B, D)
        behaviours = items[:, 1:].view(b, n_slots, length, -1) + self.position + self.slot  # (B, S, L, D)
        mask = sess > 0  # (B, S, L)
        intra = self.intra(behaviours.flatten(0, 1), mask.flatten(0, 1))  # (B*S, L, D)
        interests = masked_mean(intra, mask.flatten(0, 1)).view(b, n_slots, -1)  # (B, S, D): one per session
        present = mask.any(-1)  # (B, S)
        states, _ = self.gru(interests)  # (B, S, D); padding sessions trail, so valid states are exact
        att = self.attention.weights(target, states, present)  # (B, S)
        interest = self.evolve(states, att, present.sum(1))  # (B, D)
        x = torch.cat([fields.flatten(1), target, interest], dim=1)
        return self.linear(batch, fields) + self.mlp(x).squeeze(-1)

"""``mmie``: the second paper's multimodal interest evolution model (DIEN-style).

Each behaviour is [item ID embedding, its fused multimodal vector]; a GRU extracts interests
from the sequence, attention of each hidden state w.r.t. the target item drives an AUGRU
(interest evolution), and an MLP reads [evolved interest, target item, other fields]. DIEN's
auxiliary next-behaviour loss is not used.
"""

from __future__ import annotations

import torch
from torch import nn

from models.ctr import MODELS
from models.ctr.base import CtrModel
from models.layers import AUGRU, MLP, TargetAttention


@MODELS.register("mmie")
class MMIE(CtrModel):
    def __init__(self, spec, sizes, content):
        super().__init__(spec, sizes, content)
        d = sizes.embed_dim
        d_item = 2 * d if content else d
        self.gru = nn.GRU(d_item, d_item, batch_first=True)
        self.attention = TargetAttention(d_item, sizes.attention_dim)
        self.evolve = AUGRU(d_item, d_item)
        self.mlp = MLP(self.n_fields * d + 2 * d_item, sizes.mlp, sizes.dropout)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        lengths = batch["hist_len"]
        hist = batch["hist"][:, : max(int(lengths.max()), 1)]  # (B, T): histories are left-aligned
        ids, content = self.target_and_history(batch, hist)  # (B, 1 + T, D) each
        fields = self.embed(batch, None if content is None else content[:, 0], ids[:, 0])  # (B, F, D)
        items = ids if content is None else torch.cat([ids, content], dim=-1)  # (B, 1 + T, D_item)
        target = items[:, 0]  # (B, D_item)
        states, _ = self.gru(items[:, 1:])  # (B, T, D_item); padding trails, so valid states are exact
        att = self.attention.weights(target, states, hist > 0)  # (B, H)
        interest = self.evolve(states, att, lengths)  # (B, D_item)
        x = torch.cat([fields.flatten(1), target, interest], dim=1)
        return self.linear(batch, fields) + self.mlp(x).squeeze(-1)

"""``mmie``: the second paper's multimodal interest evolution model (DIEN-style).

Each behaviour is [item ID embedding, its fused multimodal vector]; a GRU extracts interests
from the sequence, attention of each hidden state w.r.t. the target item drives an AUGRU
(interest evolution), and an MLP reads [evolved interest, target item, other fields]. DIEN's
auxiliary next-behaviour loss is not used.
"""
from __future__ import annotations

import torch
from torch import nn

from models.ctr.base import CtrModel, register
from models.layers import AUGRU, MLP, TargetAttention


@register("mmie")
class MMIE(CtrModel):
    def __init__(self, spec, cfg, content):
        super().__init__(spec, cfg, content)
        d = cfg.embed_dim
        d_item = 2 * d if content else d
        self.gru = nn.GRU(d_item, d_item, batch_first=True)
        self.attention = TargetAttention(d_item, cfg.attention_dim)
        self.evolve = AUGRU(d_item, d_item)
        self.mlp = MLP(self.n_fields * d + 2 * d_item, cfg.mlp, cfg.dropout)

    def behaviour(self, items: torch.Tensor) -> torch.Tensor:
        ids = self.fields.item(items)
        return torch.cat([ids, self.content_vector(items)], dim=-1) if self.content is not None else ids

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        fields = self.embed(batch)  # (B, F, D)
        lengths = batch["hist_len"]
        hist = batch["hist"][:, : max(int(lengths.max()), 1)]  # (B, T): histories are left-aligned
        target = self.behaviour(batch["item"])  # (B, D_item)
        states, _ = self.gru(self.behaviour(hist))  # (B, H, D_item); padding trails, so valid states are exact
        att = self.attention.weights(target, states, hist > 0)  # (B, H)
        interest = self.evolve(states, att, lengths)  # (B, D_item)
        x = torch.cat([fields.flatten(1), target, interest], dim=1)
        return self.linear(batch, fields) + self.mlp(x).squeeze(-1)

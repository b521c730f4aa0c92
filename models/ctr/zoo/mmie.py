"""``mmie``: the second paper's multimodal interest evolution model (DIEN-style).

A GRU extracts interests from the behaviour sequence, attention of each hidden state w.r.t. the target
item drives an AUGRU (interest evolution), and an MLP reads [evolved interest, target item, other
fields]. DIEN's auxiliary next-behaviour loss is not used. With content, the target item is its ID
embedding plus its fused multimodal vector, and the content is a field of its own (as in every model).

Deliberate difference: the paper feeds each behaviour as [ID embedding, multimodal vector]. Here the
behaviours are their ID embeddings only. On data whose content is weakly aligned with clicks (the
realistic profile, 3 seeds, docs/benchmarks.md) content in the sequence lowered overall AUC (seed 0:
0.839 concatenated, seed 2: 0.827 summed, against 0.854 ± 0.008 without content): the recurrent
interest then has to track a noisy signal at every step. A behaviour is a training positive, so it is
never cold: content is needed where the item can be unseen, the target, and that is where it enters.
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
        self.gru = nn.GRU(d, d, batch_first=True)
        self.attention = TargetAttention(d, sizes.attention_dim)
        self.evolve = AUGRU(d, d)
        self.mlp = MLP((self.n_fields + 2) * d, sizes.mlp, sizes.dropout)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        lengths = batch["hist_len"]
        hist = batch["hist"][:, : max(int(lengths.max()), 1)]  # (B, T): histories are left-aligned
        # one ID lookup for target and history; content for the target only (behaviours are IDs, see above)
        ids = self.fields.item(torch.cat([batch["item_id"].unsqueeze(1), self.id_codes(hist)], dim=1))  # (B, 1+T, D)
        content = self.content_vector(batch["item"]) if self.content is not None else None  # (B, D)
        fields = self.embed(batch, content, ids[:, 0])  # (B, F, D)
        target = ids[:, 0] if content is None else ids[:, 0] + content  # (B, D)
        states, _ = self.gru(ids[:, 1:])  # (B, T, D); padding trails, so valid states are exact
        att = self.attention.weights(target, states, hist > 0)  # (B, H)
        interest = self.evolve(states, att, lengths)  # (B, D)
        x = torch.cat([fields.flatten(1), target, interest], dim=1)
        return self.linear(batch, fields) + self.mlp(x).squeeze(-1)

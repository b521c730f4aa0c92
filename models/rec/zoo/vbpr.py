"""``vbpr``: VBPR (He & McAuley 2016), as MMRec implements it: an item is [ID embedding, E f_i] with f_i
its content (every modality; E one linear map, here per-modality blocks summed), a user is
[ID preference, content preference]; score = their dot product. BPR, L2 on the batch's full vectors.

A cold item's ID half is zero (``seen_items``); it is ranked by the content profile scorer
(``ContentProfile``) that the loop calibrates on validation. Deliberate difference: E starts at zero
(MMRec: Xavier-normal), so VBPR starts as BPR-MF; a random E adds noise to every item from the first step.
"""

from __future__ import annotations

import torch
from torch import nn

from models.layers import ModalityProjection
from models.rec import MODELS
from models.rec.base import Content, Graph, Loss, RecModel, RecSizes, bpr, l2
from models.rec.zoo._common import ContentProfile, require_content, seen_items


@MODELS.register("vbpr")
class Vbpr(RecModel):
    staged = True  # content off: BPR-MF (the content half of every item is zero)

    def __init__(self, sizes: RecSizes, graph: Graph, content: Content | None):
        super().__init__(sizes, graph, content)
        d = sizes.embed_dim
        self.user = nn.Embedding(sizes.n_users, 2 * d)  # [ID part, content-preference part]
        self.item = nn.Embedding(sizes.n_items, d)
        nn.init.xavier_uniform_(self.user.weight)
        nn.init.xavier_uniform_(self.item.weight)
        self.content = ModalityProjection(require_content("vbpr", content), d)
        for proj in self.content.proj:
            nn.init.zeros_(proj.weight)
            nn.init.zeros_(proj.bias)
        self.register_buffer("seen", seen_items(graph, sizes.n_items))
        self.cold_scorer = ContentProfile(content, graph, sizes)

    def items(self, codes: torch.Tensor) -> torch.Tensor:
        """``(...,)`` item codes -> ``(..., 2D)`` [ID embedding (zero if cold), projected content]."""
        ids = self.item(codes) * self.seen[codes]
        if not self.content_on:
            return torch.cat([ids, torch.zeros_like(ids)], dim=-1)
        modal, _ = self.content(codes)  # (..., M, D), zero where a modality is missing
        return torch.cat([ids, modal.sum(-2)], dim=-1)

    def loss(self, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor) -> Loss:
        u, p, n = self.user(users), self.items(pos), self.items(neg)
        return Loss(bpr((u * p).sum(-1), torch.einsum("bd,bnd->bn", u, n)), l2(u, p, n.flatten(0, 1)))

    def scores(self, users: torch.Tensor) -> torch.Tensor:
        return self.user(users) @ self.items(torch.arange(self.sizes.n_items, device=users.device)).T

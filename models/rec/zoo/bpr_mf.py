"""``bpr_mf``: matrix factorisation trained with BPR (Rendle et al. 2009); score = user · item."""

from __future__ import annotations

import torch
from torch import nn

from models.rec import MODELS
from models.rec.base import Content, Graph, Loss, RecModel, RecSizes, bpr, l2


@MODELS.register("bpr_mf")
class BprMf(RecModel):
    def __init__(self, sizes: RecSizes, graph: Graph, content: Content | None):
        super().__init__(sizes, graph, content)
        self.user = nn.Embedding(sizes.n_users, sizes.embed_dim)
        self.item = nn.Embedding(sizes.n_items, sizes.embed_dim)
        nn.init.xavier_uniform_(self.user.weight)
        nn.init.xavier_uniform_(self.item.weight)

    def loss(self, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor) -> Loss:
        u, p, n = self.user(users), self.item(pos), self.item(neg)
        return Loss(bpr((u * p).sum(-1), torch.einsum("bd,bnd->bn", u, n)), l2(u, p, n.flatten(0, 1)))

    def scores(self, users: torch.Tensor) -> torch.Tensor:
        return self.user(users) @ self.item.weight.T

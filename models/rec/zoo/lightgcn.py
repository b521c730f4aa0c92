"""``lightgcn``: LightGCN (He et al. 2020), ID embeddings propagated over the symmetric-normalised user-item
graph with PyG's ``LGConv``, the representation is the mean of layers 0..K (alpha = 1/(K+1)).

As the authors' PyTorch code: N(0, 0.1) init, BPR on the propagated embeddings, L2 on the batch's ego
(layer-0) embeddings.
"""

from __future__ import annotations

import torch

from models.rec import MODELS
from models.rec.base import Loss, l2
from models.rec.zoo._common import LightGcnBackbone


@MODELS.register("lightgcn")
class LightGcn(LightGcnBackbone):
    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.propagate(torch.cat([self.user.weight, self.item.weight]), self.adj)
        return out.split([self.sizes.n_users, self.sizes.n_items])

    def loss(self, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor) -> Loss:
        rank, _, _ = self.ranking(users, pos, neg)
        return Loss(rank, l2(self.user(users), self.item(pos), self.item(neg).flatten(0, 1)))

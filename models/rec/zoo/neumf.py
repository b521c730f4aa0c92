"""``neumf``: NeuMF (He et al. 2017, NCF): a GMF branch (user * item) and an MLP tower on [user, item], each
with its own embeddings, joined by one linear prediction layer; trained pointwise with binary cross-entropy
on each positive and its 4 sampled negatives, as NCF does.

Init as the authors' PyTorch port: embeddings N(0, 0.01), tower Xavier-uniform, prediction layer
Kaiming-uniform (a=1), zero biases.
"""

from __future__ import annotations

import torch
from torch import nn

from models.layers import MLP
from models.rec import MODELS
from models.rec.base import Content, Graph, Loss, RecModel, RecSizes, l2

PAIRS_PER_CHUNK = 1 << 18  # (user, item) pairs per tower pass in scores: ~0.3 GB of activations at 64 wide


@MODELS.register("neumf")
class NeuMf(RecModel):
    negatives = 4

    def __init__(self, sizes: RecSizes, graph: Graph, content: Content | None):
        super().__init__(sizes, graph, content)
        d = sizes.embed_dim
        self.user_gmf, self.item_gmf = nn.Embedding(sizes.n_users, d), nn.Embedding(sizes.n_items, d)
        self.user_mlp, self.item_mlp = nn.Embedding(sizes.n_users, d), nn.Embedding(sizes.n_items, d)
        self.tower = MLP(2 * d, sizes.mlp, sizes.dropout, out=None)
        self.predict = nn.Linear(d + self.tower.d_out, 1)
        for emb in (self.user_gmf, self.item_gmf, self.user_mlp, self.item_mlp):
            nn.init.normal_(emb.weight, std=0.01)
        for layer in self.tower.net:
            if isinstance(layer, nn.Linear):
                nn.init.xavier_uniform_(layer.weight)
                nn.init.zeros_(layer.bias)
        nn.init.kaiming_uniform_(self.predict.weight, a=1, nonlinearity="sigmoid")
        nn.init.zeros_(self.predict.bias)

    def logits(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """``(B,)`` users, ``(B, N)`` items -> ``(B, N)`` logits."""
        gmf = self.user_gmf(users).unsqueeze(1) * self.item_gmf(items)
        u = self.user_mlp(users).unsqueeze(1).expand(-1, items.shape[1], -1)
        mlp = self.tower(torch.cat([u, self.item_mlp(items)], dim=-1))
        return self.predict(torch.cat([gmf, mlp], dim=-1)).squeeze(-1)

    def loss(self, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor) -> Loss:
        items = torch.cat([pos.unsqueeze(1), neg], dim=1)  # (B, 1 + N)
        labels = torch.zeros(items.shape, device=items.device)
        labels[:, 0] = 1.0
        rank = nn.functional.binary_cross_entropy_with_logits(self.logits(users, items), labels)
        embs = [self.user_gmf(users), self.user_mlp(users), self.item_gmf(items).flatten(0, 1)]
        return Loss(rank, l2(*embs, self.item_mlp(items).flatten(0, 1)))

    def scores(self, users: torch.Tensor) -> torch.Tensor:
        # logits() for every item, split so that no (B, I, 2D) concatenation is built: the prediction layer
        # is linear, so the GMF branch is one matmul, and the tower's first layer splits into a user part
        # and an item part computed once each; only the later layers run per (user, item) pair.
        d = self.sizes.embed_dim
        first, rest = self.tower.net[0], self.tower.net[1:]
        w_user, w_item = first.weight.split(d, dim=1)
        w_gmf, w_mlp = self.predict.weight.split([d, self.tower.d_out], dim=1)  # (1, D), (1, H)
        gmf = (self.user_gmf(users) * w_gmf) @ self.item_gmf.weight.T  # (B, I)
        h_user = self.user_mlp(users) @ w_user.T  # (B, H1)
        h_item = self.item_mlp.weight @ w_item.T + first.bias  # (I, H1)
        step = max(1, PAIRS_PER_CHUNK // max(1, users.shape[0]))
        mlp = [
            (rest(h_user.unsqueeze(1) + h_item[s : s + step]) @ w_mlp.T).squeeze(-1)
            for s in range(0, h_item.shape[0], step)
        ]
        return gmf + torch.cat(mlp, dim=1) + self.predict.bias

"""The top-K model contract: what the shared training loop and the full-ranking evaluation call.

A model is built from plain sizes (``RecSizes``), the training user-item graph (``Graph``: one edge per
training positive) and optional item content (``Content``), never from a params object. The loop calls
``loss(users, pos, neg)`` on batches of (user, positive item, ``negatives`` sampled negatives) and
adds ``reg * l2`` to the ranking loss; evaluation calls ``refresh()`` once (eval mode, no grad: graph
models propagate and cache there), then ``ranked_scores(users)`` (``scores`` plus the cold items' offset)
for batches of users against all items.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

Content = dict[str, tuple[torch.Tensor, torch.Tensor]]  # modality -> ((n_items, D_m) vectors, (n_items,) mask)


@dataclass(frozen=True)
class RecSizes:
    """The sizes a top-K model is built with (each model uses the ones it needs)."""

    n_users: int
    n_items: int
    embed_dim: int = 64  # D of the user and item embeddings
    layers: int = 2  # graph propagation layers (lightgcn, mmgcn, freedom, ...)
    mlp: tuple[int, ...] = (64, 32)  # hidden sizes of MLP towers (neumf, metammf's meta network)
    rank: int = 4  # CP rank of metammf_cp
    knn: int = 10  # neighbours per item in content item-item graphs
    dropout: float = 0.0


@dataclass(frozen=True)
class Graph:
    """The training interactions as edges (user code, item code); codes are 0..n-1."""

    users: torch.Tensor  # (E,) int64
    items: torch.Tensor  # (E,) int64


@dataclass(frozen=True)
class Loss:
    rank: torch.Tensor  # scalar ranking loss (BPR, or the model's own) plus any auxiliary terms
    l2: torch.Tensor  # scalar L2 term on the batch's parameters; the loop multiplies it by rec.reg


class RecModel(nn.Module):
    negatives: int = 1  # sampled negatives per positive that the training loop draws
    trainable: bool = True  # False: no training (pop); the loop only evaluates
    # the model's defaults for rec.lr / rec.reg / rec.dropout / rec.mlp when params leave them null (sane on
    # both synthetic profiles, chosen on validation recall: docs/stages/rec.md)
    lr: float = 1e-3
    reg: float = 1e-4
    dropout: float = 0.0
    mlp: tuple[int, ...] = (64, 32)
    # True: the model is its ID-only base while ``content_on`` is False (its content parameters unused). The
    # loop trains that base first, then switches the content on and keeps it only while the validation
    # ranking improves (``pipeline.rec.train.fit``), so content that does not help costs nothing.
    staged: bool = False

    def __init__(self, sizes: RecSizes, graph: Graph, content: Content | None):
        super().__init__()
        self.sizes = sizes
        self.register_buffer("cold", torch.bincount(graph.items, minlength=sizes.n_items) == 0, persistent=False)
        # its columns' codes: index_select / index_copy_ on them are 2x faster than boolean indexing
        self.register_buffer("cold_index", torch.nonzero(self.cold).squeeze(1), persistent=False)
        # content models set a module that scores items from content alone (``scores(users)``; trained by
        # the loop before the model, with its own ``loss``): ``ranked_scores`` ranks the cold items with it
        # and blends it into the warm items' scores
        self.cold_scorer: nn.Module | None = None
        # (spread, shift, slope) placing a user's cold items among its warm ones, in units of the user's warm-score
        # std; spread 0 = uncalibrated (cold items keep the model's own scores). Fitted on validation by the loop.
        self.register_buffer("cold_affine", torch.zeros(3))
        # weight of the cold scorer's (content profile's) scores blended into every warm item's score, in units of
        # the user's score std (``blend_profile``); 0 = none. Set by the loop from ``rec.profile_weight``.
        self.register_buffer("profile_weight", torch.zeros(()))
        # each user's activity, log(1 + training interactions) standardised over users: a content profile
        # averaged over a long history is more reliable than one from a single item, so the placement's
        # ``slope`` can rank a heavy user's cold items higher than a light user's
        degree = torch.bincount(graph.users, minlength=sizes.n_users).float().log1p()
        activity = (degree - degree.mean()) / degree.std(correction=0).clamp(min=1e-12)
        self.register_buffer("activity", activity, persistent=False)
        self.content_on = True  # staged models: False = the ID-only base (set by the loop)

    def lr_groups(self) -> list[tuple[list[nn.Parameter], float]]:
        """The trainable parameters in groups, each with its learning rate as a multiple of ``rec.lr``."""
        return [([p for p in self.parameters() if p.requires_grad], 1.0)]

    def loss(self, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor) -> Loss:
        """users (B,), pos (B,), neg (B, negatives) -> the batch's loss."""
        raise NotImplementedError

    def refresh(self) -> None:
        """Recompute what ``scores`` reads from the current parameters (called before evaluation)."""

    def scores(self, users: torch.Tensor) -> torch.Tensor:
        """users (B,) -> (B, n_items) scores against every item (higher ranks first)."""
        raise NotImplementedError

    def ranked_scores(self, users: torch.Tensor) -> torch.Tensor:
        """What evaluation ranks: ``scores`` with the content profile blended in (``blend_profile``) and the cold
        items placed by ``place_cold``, where the model has a cold scorer and the loop set them."""
        placed = float(self.cold_affine[0]) != 0 and 0 < self.cold_index.numel() < len(self.cold)
        s, c = self.blended_scores(users, profile=placed)
        return self.place_cold(s, c.index_select(1, self.cold_index), users, self.cold_affine) if placed else s

    def blended_scores(self, users: torch.Tensor, profile: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``scores`` with the content profile blended in at ``profile_weight``, and the profile's own scores
        (B, n_items) for the cold placement: computed when blended or asked for (``profile``), else None."""
        s = self.scores(users)
        weight = float(self.profile_weight)
        if self.cold_scorer is None or not (weight or profile):
            return s, None
        c = self.cold_scorer.scores(users)
        return (self.blend_profile(s, c, weight) if weight else s), c

    def blend_profile(self, s: torch.Tensor, c: torch.Tensor, weight: float) -> torch.Tensor:
        """``s`` (B, n_items) + ``weight`` x the user's warm-score std x ``c`` (the content profile's scores)
        standardised per user over the warm items; cold columns unchanged (``place_cold`` sets them)."""
        if self.cold_index.numel() == len(self.cold):  # no warm item to blend
            return s
        _, s_std = warm_stats(s, self.cold_index, correction=1)
        c_mean, c_std = warm_stats(c, self.cold_index, correction=0)
        scale = weight * s_std / c_std.clamp(min=1e-12)
        out = torch.addcmul(s, c, scale).sub_(scale * c_mean)
        return out.index_copy_(1, self.cold_index, s.index_select(1, self.cold_index))

    def place_cold(self, s: torch.Tensor, c: torch.Tensor, users: torch.Tensor, affine: torch.Tensor) -> torch.Tensor:
        """``s`` (B, n_items) with its cold columns replaced: the cold items' content scores ``c`` (B, n_cold),
        standardised per user (z), placed at the user's warm mean + std x (spread z + shift + slope x
        activity): the user's own scale, so one placement fits light and heavy users alike, moved up for
        users with a longer history."""
        spread, shift, slope = affine.tolist()
        mean, std = warm_stats(s, self.cold_index, correction=1)
        z = (c - c.mean(1, keepdim=True)) / c.std(1, correction=0, keepdim=True).clamp(min=1e-12)
        offset = shift + slope * self.activity[users].unsqueeze(1) if slope else shift
        return s.clone().index_copy_(1, self.cold_index, mean + std * (spread * z + offset))


def warm_stats(x: torch.Tensor, cold: torch.Tensor, correction: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row's mean and std (``(B, 1)`` each) of ``x`` (B, n) over every column but the ``cold`` codes.

    As ``x[:, warm].mean(1)`` / ``.std(1, correction=...)``, from each row's sum and sum of squares less the
    cold columns': scoring every user at every validation ranking, the copy of the warm columns cost as much
    as the ranking, and torch's ``std`` (Welford, element by element) 1.5x it. The sum-of-squares form loses
    digits only where a row's mean is thousands of its std, far from any ranking's scores.
    """
    total = x.sum(1, keepdim=True)
    squares = torch.linalg.vector_norm(x, dim=1, keepdim=True).square()
    if cold.numel():
        xc = x.index_select(1, cold)
        total, squares = total - xc.sum(1, keepdim=True), squares - xc.square().sum(1, keepdim=True)
    n = x.shape[1] - cold.numel()
    mean = total / n
    return mean, ((squares - n * mean.square()).clamp(min=0) / max(n - correction, 1)).sqrt()


def bpr(pos_scores: torch.Tensor, neg_scores: torch.Tensor) -> torch.Tensor:
    """Mean BPR loss, -log sigmoid(pos - neg), over (B,) positives against (B, N) negatives."""
    return -nn.functional.logsigmoid(pos_scores.unsqueeze(1) - neg_scores).mean()


def l2(*tensors: torch.Tensor) -> torch.Tensor:
    """The mean over the batch of the squared L2 norms (as LightGCN's reference code regularises)."""
    return sum(t.pow(2).sum() for t in tensors) / (2 * tensors[0].shape[0])

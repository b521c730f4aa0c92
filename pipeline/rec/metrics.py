"""Full-ranking top-K evaluation, the field's protocol: every evaluated user against every item.

For batches of users, the model's ``(B, n_items)`` scores get -inf at the items to exclude (the
user's training positives; for test also its validation positives), ``torch.topk`` takes the top
``max(ks)``, and a gather against the user's targets gives the hits: no per-user Python loop.
Per user: Recall@K = hits / targets, Precision@K = hits / K, HitRate@K = any hit, NDCG@K = DCG /
ideal DCG (binary gains, log2 discounts); each averaged over the users with at least one target.
Users without targets are skipped and counted. The cold slice: the same ranking over all items,
targets restricted to cold items (no training interaction), over the users that have such a target.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

KS = (10, 20, 50)
METRICS = ("recall", "ndcg", "precision", "hit")


@dataclass(frozen=True)
class Pairs:
    """Per-user item lists in CSR form: user u's items are ``items[indptr[u]:indptr[u + 1]]``."""

    indptr: np.ndarray  # (n_users + 1,) int64
    items: np.ndarray  # (nnz,) int64

    @classmethod
    def of(cls, user: np.ndarray, item: np.ndarray, n_users: int) -> Pairs:
        order = np.lexsort((item, user))
        indptr = np.zeros(n_users + 1, np.int64)
        np.cumsum(np.bincount(user, minlength=n_users), out=indptr[1:])
        return cls(indptr, item[order].astype(np.int64))

    def counts(self) -> np.ndarray:
        return np.diff(self.indptr)

    def batch(self, users: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """(row in batch, item) index tensors of these users' items."""
        start, stop = self.indptr[users], self.indptr[users + 1]
        lengths = stop - start
        rows = np.repeat(np.arange(len(users)), lengths)
        offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        cols = self.items[np.repeat(start, lengths) + offsets]
        return torch.from_numpy(rows), torch.from_numpy(cols)


def evaluate(
    scores: Callable[[torch.Tensor], torch.Tensor],
    targets: Pairs,
    exclude: Sequence[Pairs],
    n_items: int,
    *,
    ks: Sequence[int] = KS,
    batch: int = 1024,
    cold: np.ndarray | None = None,
) -> dict[str, float | int | None]:
    """Mean metrics@K over users with targets (``<metric>@<k>`` keys), ``users`` evaluated, ``skipped``;
    with ``cold`` ((n_items,) bool) also ``cold/<metric>@<k>``, ``cold/users``."""
    counts = targets.counts()
    users = np.flatnonzero(counts > 0)
    top_k = min(max(ks), n_items)
    cold_t = torch.from_numpy(cold) if cold is not None else None
    slices = {"": None} | ({"cold/": cold_t} if cold_t is not None else {})
    # targets per user in each slice, from the lists (a sum over (B, n_items) would cost as much as the ranking)
    n_targets = {"": torch.from_numpy(counts)}
    if cold is not None:
        per_user = np.repeat(np.arange(len(counts)), counts)
        n_targets["cold/"] = torch.from_numpy(np.bincount(per_user[cold[targets.items]], minlength=len(counts)))
    sums = {s: {f"{m}@{k}": 0.0 for m in METRICS for k in ks} for s in slices}
    evaluated = {s: 0 for s in slices}
    discount = 1.0 / torch.log2(torch.arange(2, top_k + 2, dtype=torch.float64))  # (K,)
    ideal = torch.cumsum(discount, 0)  # ideal DCG with n targets: ideal[min(n, k) - 1]
    with torch.no_grad():
        for start in range(0, len(users), batch):
            ub = users[start : start + batch]
            s = scores(torch.from_numpy(ub)).float()
            if (
                s._is_view() or s.requires_grad
            ):  # e.g. pop's expanded counts: masking in place would write the model's buffer
                s = s.detach().clone()
            for pairs in exclude:
                rows, cols = pairs.batch(ub)
                s[rows, cols] = float("-inf")  # in place: a copy of (B, n_items) would cost as much as the ranking
            best, top = torch.topk(s, top_k, dim=1)  # (B, K)
            rows, cols = targets.batch(ub)
            truth = torch.zeros(len(ub), n_items, dtype=torch.bool)
            truth[rows, cols] = True
            # is the item at each rank a target; a masked item (-inf) fills ranks only when a user has
            # fewer than K unmasked items, and never counts
            found = truth.gather(1, top) & (best > float("-inf"))
            for prefix, mask in slices.items():
                n_pos = n_targets[prefix][torch.from_numpy(ub)]
                keep = n_pos > 0
                if not keep.any():
                    continue
                hits = (found if mask is None else found & mask[top])[keep].double()  # (B', K)
                n_pos = n_pos[keep].double()
                evaluated[prefix] += int(keep.sum())
                for k in ks:
                    kk = min(k, top_k)
                    h = hits[:, :kk]
                    n_hit = h.sum(1)
                    dcg = (h * discount[:kk]).sum(1)
                    idcg = ideal[(torch.clamp(n_pos, max=kk) - 1).long()]
                    acc = sums[prefix]
                    acc[f"recall@{k}"] += float((n_hit / n_pos).sum())
                    acc[f"precision@{k}"] += float((n_hit / k).sum())
                    acc[f"hit@{k}"] += float((n_hit > 0).double().sum())
                    acc[f"ndcg@{k}"] += float((dcg / idcg).sum())
    out: dict[str, float | int | None] = {}
    for prefix in slices:
        n = evaluated[prefix]
        out |= {f"{prefix}{key}": (v / n if n else None) for key, v in sums[prefix].items()}
        out[f"{prefix}users"] = n
    out["skipped"] = int(len(counts) - len(users))
    return out

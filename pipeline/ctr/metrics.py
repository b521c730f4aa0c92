"""CTR evaluation metrics: AUC, logloss, accuracy, user-grouped AUC, cold-start AUC within the cold slice,
AUC per history-length group, ROC points.

NumPy only, equal to scikit-learn's ``roc_auc_score``, ``log_loss``, ``accuracy_score`` and ``roc_curve``
(the tests compare them): importing ``sklearn.metrics`` costs every ``ctr_train`` run ~2.5 s of CPU.
"""

from __future__ import annotations

import numpy as np


def auc(y: np.ndarray, p: np.ndarray) -> float:
    """ROC AUC; NaN when only one class is present (undefined)."""
    won, pairs, _ = _grouped_pairs(np.zeros(len(y), np.int8), y, p)  # one group: the Mann-Whitney AUC
    return float(won[0] / pairs[0]) if len(pairs) else float("nan")


# The history-length groups of the MMIE paper's breakdown: (label, lowest, highest) behaviours.
HISTORY_GROUPS = (
    ("<=10", 0, 10),
    ("11-15", 11, 15),
    ("16-20", 16, 20),
    ("21-25", 21, 25),
    ("26-30", 26, 30),
    ("31-35", 31, 35),
    (">35", 36, np.iinfo(np.int64).max),
)


def group_auc(groups: np.ndarray, y: np.ndarray, p: np.ndarray) -> float:
    """Mean of per-group AUC weighted by group size, over groups holding both classes (vectorised).

    Per group, AUC = (sum of positive ranks - n_pos (n_pos + 1) / 2) / (n_pos n_neg), ranks
    averaged over ties: the Mann-Whitney form that ``roc_auc_score`` computes.
    """
    won, pairs, size = _grouped_pairs(groups, y, p)
    return float(np.average(won / pairs, weights=size)) if len(size) else float("nan")


def paired_auc(groups: np.ndarray, y: np.ndarray, p: np.ndarray) -> tuple[float, int]:
    """AUC over the (positive, negative) pairs of the same group only, and the number of such pairs.

    The share of same-group pairs where the positive scores higher (ties count half): each group's
    pairs weigh the same, unlike ``group_auc``'s size weights. The cold-start AUC is this over the
    cold slice with users as groups: cold positives against cold negatives of the same user.
    """
    won, pairs, _ = _grouped_pairs(groups, y, p)
    total = int(pairs.sum())
    return (float(won.sum() / total) if total else float("nan")), total


def _grouped_pairs(groups: np.ndarray, y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per group holding both classes: pairs won, pairs, group size (from rank sums, vectorised)."""
    y = np.asarray(y).astype(bool)
    order = np.lexsort((p, groups))
    g, s, yy = np.asarray(groups)[order], np.asarray(p)[order], y[order]
    n = len(g)
    empty = np.zeros(0)
    if not n:
        return empty, empty, empty
    g_new = np.r_[True, g[1:] != g[:-1]]
    g_id = np.cumsum(g_new) - 1
    g_start = np.flatnonzero(g_new)
    rank = np.arange(n) - g_start[g_id] + 1.0  # 1-based rank within the group
    run_new = g_new | np.r_[True, s[1:] != s[:-1]]
    run_id = np.cumsum(run_new) - 1
    avg_rank = (np.bincount(run_id, weights=rank) / np.bincount(run_id))[run_id]  # ties share their mean rank
    n_pos = np.bincount(g_id, weights=yy)
    size = np.bincount(g_id).astype(float)
    n_neg = size - n_pos
    rank_sum = np.bincount(g_id, weights=avg_rank * yy)
    ok = (n_pos > 0) & (n_neg > 0)
    won = rank_sum[ok] - n_pos[ok] * (n_pos[ok] + 1) / 2
    return won, n_pos[ok] * n_neg[ok], size[ok]


def evaluate(y: np.ndarray, p: np.ndarray, users: np.ndarray, cold: np.ndarray) -> dict[str, float | int]:
    """Test metrics. ``cold_auc``: within the cold slice, each user's cold positives against that
    user's cold negatives (``paired_auc``); ``cold_pairs`` counts those pairs."""
    p = np.clip(p.astype(np.float64), 1e-7, 1 - 1e-7)
    cold_auc, cold_pairs = paired_auc(users[cold], y[cold], p[cold])
    return {
        "auc": auc(y, p),
        "logloss": float(-np.mean(np.where(y == 1, np.log(p), np.log1p(-p)))) if len(y) else float("nan"),
        "accuracy": float(np.mean((p >= 0.5) == (y == 1))) if len(y) else float("nan"),
        "gauc": group_auc(users, y, p),
        "cold_auc": cold_auc,
        "cold_pairs": cold_pairs,
        "cold_samples": int(cold.sum()),
        "samples": int(len(y)),
    }


def auc_by_history(y: np.ndarray, p: np.ndarray, hist_len: np.ndarray) -> dict[str, dict[str, float | int]]:
    """AUC and sample count per history-length group (``HISTORY_GROUPS``; empty groups included, AUC NaN)."""
    out: dict[str, dict[str, float | int]] = {}
    for label, low, high in HISTORY_GROUPS:
        m = (hist_len >= low) & (hist_len <= high)
        out[label] = {"auc": auc(y[m], p[m]) if m.any() else float("nan"), "samples": int(m.sum())}
    return out


def roc_points(y: np.ndarray, p: np.ndarray, n: int = 101) -> tuple[np.ndarray, np.ndarray]:
    """The ROC curve resampled on ``n`` evenly spaced false-positive rates (a small plot file)."""
    fpr, tpr = roc_curve(y, p)
    grid = np.linspace(0.0, 1.0, n)
    return grid, np.interp(grid, fpr, tpr)


def roc_curve(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """False- and true-positive rates at each distinct score, highest first, from (0, 0), without the
    collinear intermediate points: ``sklearn.metrics.roc_curve`` with ``drop_intermediate``."""
    order = np.argsort(-np.asarray(p, np.float64), kind="mergesort")
    s, yy = np.asarray(p, np.float64)[order], (np.asarray(y) == 1)[order]
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # the last sample of each distinct score
    tps = np.cumsum(yy)[last].astype(np.float64)
    fps = (last + 1) - tps
    if len(tps) > 2:
        keep = np.flatnonzero(np.r_[True, np.logical_or(np.diff(fps, 2), np.diff(tps, 2)), True])
        tps, fps = tps[keep], fps[keep]
    tps, fps = np.r_[0.0, tps], np.r_[0.0, fps]
    with np.errstate(invalid="ignore", divide="ignore"):
        return fps / fps[-1], tps / tps[-1]

"""CTR evaluation metrics: AUC, logloss, accuracy (scikit-learn), user-grouped AUC, cold-start AUC, ROC points."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, log_loss, roc_auc_score, roc_curve


def auc(y: np.ndarray, p: np.ndarray) -> float:
    """ROC AUC; NaN when only one class is present (undefined)."""
    return float(roc_auc_score(y, p)) if len(np.unique(y)) == 2 else float("nan")


def group_auc(groups: np.ndarray, y: np.ndarray, p: np.ndarray) -> float:
    """Mean of per-group AUC weighted by group size, over groups holding both classes (vectorised).

    Per group, AUC = (sum of positive ranks - n_pos (n_pos + 1) / 2) / (n_pos n_neg), ranks
    averaged over ties: the Mann-Whitney form that ``roc_auc_score`` computes.
    """
    y = np.asarray(y).astype(bool)
    order = np.lexsort((p, groups))
    g, s, yy = np.asarray(groups)[order], np.asarray(p)[order], y[order]
    n = len(g)
    if not n:
        return float("nan")
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
    if not ok.any():
        return float("nan")
    per_group = (rank_sum[ok] - n_pos[ok] * (n_pos[ok] + 1) / 2) / (n_pos[ok] * n_neg[ok])
    return float(np.average(per_group, weights=size[ok]))


def evaluate(y: np.ndarray, p: np.ndarray, users: np.ndarray, cold: np.ndarray) -> dict[str, float | int]:
    p = np.clip(p.astype(np.float64), 1e-7, 1 - 1e-7)
    return {
        "auc": auc(y, p),
        "logloss": float(log_loss(y, p, labels=[0, 1])),
        "accuracy": float(accuracy_score(y, p >= 0.5)),
        "gauc": group_auc(users, y, p),
        "cold_auc": auc(y[cold], p[cold]) if cold.any() else float("nan"),
        "cold_samples": int(cold.sum()),
        "samples": int(len(y)),
    }


def roc_points(y: np.ndarray, p: np.ndarray, n: int = 101) -> tuple[np.ndarray, np.ndarray]:
    """The ROC curve resampled on ``n`` evenly spaced false-positive rates (a small plot file)."""
    fpr, tpr, _ = roc_curve(y, p)
    grid = np.linspace(0.0, 1.0, n)
    return grid, np.interp(grid, fpr, tpr)

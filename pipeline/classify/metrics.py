"""Classification metrics of the test split: accuracy, macro and per-class precision/recall/F1."""

from __future__ import annotations

from typing import Any

import numpy as np


def classification_metrics(y: np.ndarray, pred: np.ndarray, classes: tuple[str, ...]) -> dict[str, Any]:
    # NumPy, equal to scikit-learn's confusion_matrix and precision_recall_fscore_support(zero_division=0)
    # (the tests compare them): importing sklearn.metrics costs every classify run ~2.5 s of CPU.
    n = len(classes)
    confusion = np.bincount(np.asarray(y) * n + np.asarray(pred), minlength=n * n).reshape(n, n)
    hit, support, predicted = np.diag(confusion), confusion.sum(1), confusion.sum(0)
    p, r = _ratio(hit, predicted), _ratio(hit, support)
    f = _ratio(2 * p * r, p + r)
    macro = (p.mean(), r.mean(), f.mean()) if n else (0.0, 0.0, 0.0)
    return {
        "accuracy": float((y == pred).mean()) if len(y) else 0.0,
        "macro_precision": float(macro[0]),
        "macro_recall": float(macro[1]),
        "macro_f1": float(macro[2]),
        "per_class": {
            c: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(support[i])}
            for i, c in enumerate(classes)
        },
        "confusion": confusion.tolist(),
    }


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den``, 0 where ``den`` is 0 (scikit-learn's ``zero_division=0``)."""
    num, den = np.asarray(num, np.float64), np.asarray(den, np.float64)
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)

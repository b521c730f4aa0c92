from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from pipeline.classify.metrics import classification_metrics


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_numpy_metrics_equal_sklearns(seed):
    """NumPy metrics (importing sklearn.metrics costs each classify run seconds): sklearn's numbers, a class
    never predicted and one absent from y included (zero_division=0)."""
    rng = np.random.default_rng(seed)
    classes = ("a", "b", "c", "d")
    y = rng.integers(0, 3, 60)  # class d never occurs
    pred = np.where(rng.random(60) < 0.6, y, rng.integers(0, 2, 60))
    m = classification_metrics(y, pred, classes)
    labels = np.arange(4)
    p, r, f, support = precision_recall_fscore_support(y, pred, labels=labels, zero_division=0)
    macro = precision_recall_fscore_support(y, pred, labels=labels, average="macro", zero_division=0)
    assert m["confusion"] == confusion_matrix(y, pred, labels=labels).tolist()
    assert [m["macro_precision"], m["macro_recall"], m["macro_f1"]] == pytest.approx(list(macro[:3]), abs=1e-12)
    for i, c in enumerate(classes):
        got = m["per_class"][c]
        assert [got["precision"], got["recall"], got["f1"]] == pytest.approx([p[i], r[i], f[i]], abs=1e-12)
        assert got["support"] == support[i]
    assert m["accuracy"] == pytest.approx((y == pred).mean())

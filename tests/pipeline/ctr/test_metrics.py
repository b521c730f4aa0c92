from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, log_loss, roc_auc_score

from pipeline.ctr.metrics import auc, evaluate, group_auc, roc_points


def per_user_reference(users, y, p):
    num, den = 0.0, 0
    for u in np.unique(users):
        m = users == u
        if len(np.unique(y[m])) == 2:
            num += roc_auc_score(y[m], p[m]) * m.sum()
            den += m.sum()
    return num / den


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_group_auc_matches_a_per_user_sklearn_loop(seed):
    rng = np.random.default_rng(seed)
    users = rng.integers(0, 15, 400)
    y = rng.integers(0, 2, 400)
    p = np.round(rng.random(400), 1)  # many ties
    assert group_auc(users, y, p) == pytest.approx(per_user_reference(users, y, p), abs=1e-12)


def test_known_values():
    y = np.array([0, 0, 1, 1])
    p = np.array([0.1, 0.4, 0.35, 0.8])
    assert auc(y, p) == 0.75
    m = evaluate(y, p, np.array([1, 1, 1, 1]), np.array([False, True, True, False]))
    assert m["auc"] == 0.75 and m["gauc"] == 0.75 and m["cold_auc"] == 0.0 and m["cold_samples"] == 2
    assert m["logloss"] == pytest.approx(log_loss(y, p))
    assert m["accuracy"] == accuracy_score(y, p >= 0.5) == 0.75
    assert math.isnan(auc(np.ones(3), np.array([0.1, 0.2, 0.3])))
    assert math.isnan(evaluate(y, p, np.arange(4), np.zeros(4, bool))["gauc"])  # no user has both classes


def test_roc_points_span_the_unit_square():
    y = np.array([0, 1, 0, 1, 1])
    fpr, tpr = roc_points(y, np.array([0.2, 0.9, 0.4, 0.3, 0.8]), n=11)
    assert fpr[0] == 0 and fpr[-1] == 1 and tpr[-1] == 1 and np.all(np.diff(tpr) >= 0)

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn import metrics as sk
from sklearn.metrics import accuracy_score, log_loss, roc_auc_score

from pipeline.ctr.metrics import (
    HISTORY_GROUPS,
    auc,
    auc_by_history,
    evaluate,
    group_auc,
    paired_auc,
    roc_curve,
    roc_points,
)


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


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_numpy_metrics_equal_sklearns(seed):
    """The metrics are NumPy (importing sklearn.metrics costs each ctr_train run seconds): same numbers."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 500)
    p = np.clip(np.round(rng.random(500) * 0.6 + 0.4 * y, 2), 1e-7, 1 - 1e-7)  # ties and a signal
    m = evaluate(y, p, np.zeros(500, int), np.zeros(500, bool))
    assert m["auc"] == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert m["logloss"] == pytest.approx(log_loss(y, p), abs=1e-12)
    assert m["accuracy"] == accuracy_score(y, p >= 0.5)
    fpr, tpr, _ = sk.roc_curve(y, p)
    ours = roc_curve(y, p)
    np.testing.assert_allclose(ours[0], fpr, atol=1e-12)
    np.testing.assert_allclose(ours[1], tpr, atol=1e-12)


def test_roc_points_span_the_unit_square():
    y = np.array([0, 1, 0, 1, 1])
    fpr, tpr = roc_points(y, np.array([0.2, 0.9, 0.4, 0.3, 0.8]), n=11)
    assert fpr[0] == 0 and fpr[-1] == 1 and tpr[-1] == 1 and np.all(np.diff(tpr) >= 0)


def test_cold_auc_pairs_cold_positives_with_cold_negatives_of_the_same_user():
    users = np.array([1, 1, 1, 2, 2, 3, 1, 2])
    y = np.array([1, 0, 0, 1, 0, 1, 0, 1])
    p = np.array([0.9, 0.5, 0.95, 0.2, 0.1, 0.3, 0.99, 0.01])
    cold = np.array([True] * 6 + [False] * 2)  # the last two are warm: never paired with the cold slice
    # u1: 0.9 beats 0.5, loses to 0.95; u2: 0.2 beats 0.1; u3 has no cold negative: no pair
    assert paired_auc(users[cold], y[cold], p[cold]) == (2 / 3, 3)
    m = evaluate(y, p, users, cold)
    assert m["cold_auc"] == pytest.approx(2 / 3) and m["cold_pairs"] == 3 and m["cold_samples"] == 6
    assert auc(y[cold], p[cold]) == pytest.approx(4 / 9)  # pooled across users it would differ
    assert group_auc(users[cold], y[cold], p[cold]) == pytest.approx((0.5 * 3 + 1.0 * 2) / 5)  # size-weighted
    assert math.isnan(paired_auc(np.array([1, 2]), np.array([1, 0]), np.array([0.2, 0.1]))[0])  # no same-user pair


def test_auc_by_history_groups():
    total = np.array([3, 10, 10, 11, 15, 36, 40, 40])
    y = np.array([1, 0, 1, 1, 0, 0, 1, 1])
    p = np.array([0.1, 0.2, 0.3, 0.9, 0.1, 0.5, 0.4, 0.6])
    got = auc_by_history(y, p, total)
    assert list(got) == [g[0] for g in HISTORY_GROUPS] == ["<=10", "11-15", "16-20", "21-25", "26-30", "31-35", ">35"]
    assert got["<=10"] == {"auc": 0.5, "samples": 3}  # positives 0.1 and 0.3 against 0.2: one of two pairs
    assert got["11-15"] == {"auc": 1.0, "samples": 2}
    assert got[">35"] == {"auc": 0.5, "samples": 3}
    assert math.isnan(got["16-20"]["auc"]) and got["16-20"]["samples"] == 0

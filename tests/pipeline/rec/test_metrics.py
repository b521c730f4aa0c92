"""Full-ranking metrics against a ranking computed by hand; masked items never reach the top-K."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.rec.metrics import Pairs, evaluate

SCORES = torch.tensor(
    [
        [5.0, 4.0, 3.0, 2.0, 1.0],  # user 0: ranks items 0, 1, 2, 3, 4
        [1.0, 2.0, 3.0, 4.0, 5.0],  # user 1: ranks 4, 3, 2, 1, 0
        [0.0, 0.0, 0.0, 0.0, 0.0],  # user 2: no target (skipped)
    ]
)


def pairs(*edges):
    u, i = zip(*edges) if edges else ((), ())
    return Pairs.of(np.array(u, np.int64), np.array(i, np.int64), 3)


def test_metrics_of_a_hand_computed_ranking():
    train = pairs((0, 0))  # masked: user 0's list becomes 1, 2, 3, 4
    test = pairs((0, 1), (0, 3), (1, 0))
    cold = np.array([False, False, False, True, False])  # item 3 has no training interaction
    m = evaluate(lambda u: SCORES[u], test, [train], 5, ks=(1, 2, 3), cold=cold)
    ndcg2_user0 = 1 / (1 + 1 / np.log2(3))  # hit at rank 1, two targets
    ndcg3_user0 = (1 + 1 / np.log2(4)) / (1 + 1 / np.log2(3))  # hits at ranks 1 and 3
    expected = {
        "recall@1": 0.25,  # (1/2 + 0) / 2 users
        "precision@1": 0.5,
        "hit@1": 0.5,
        "ndcg@1": 0.5,
        "recall@2": 0.25,
        "precision@2": 0.25,
        "ndcg@2": ndcg2_user0 / 2,
        "recall@3": 0.5,
        "precision@3": 1 / 3,
        "hit@3": 0.5,
        "ndcg@3": ndcg3_user0 / 2,
        "users": 2,
        "skipped": 1,
        # cold slice: only user 0 has a cold target (item 3, at rank 3 of the masked list)
        "cold/users": 1,
        "cold/recall@2": 0.0,
        "cold/recall@3": 1.0,
        "cold/ndcg@3": 1 / np.log2(4),
        "cold/precision@3": 1 / 3,
    }
    for key, value in expected.items():
        assert m[key] == pytest.approx(value), key


def test_batches_do_not_change_the_numbers():
    rng = np.random.default_rng(0)
    scores = torch.from_numpy(rng.standard_normal((50, 30)))
    u, i = rng.integers(0, 50, 200), rng.integers(0, 30, 200)
    test = Pairs.of(u[:100], i[:100], 50)
    train = Pairs.of(u[100:], i[100:], 50)
    whole = evaluate(lambda b: scores[b], test, [train], 30, batch=1000)
    split = evaluate(lambda b: scores[b], test, [train], 30, batch=7)
    assert whole == pytest.approx(split)


def test_masked_items_never_reach_the_top_k_even_when_they_score_highest():
    rng = np.random.default_rng(1)
    n_users, n_items = 40, 60
    keys = rng.choice(n_users * n_items, 400, replace=False)  # distinct pairs, as rec_data leaves them
    u, i = keys // n_items, keys % n_items
    train, valid = Pairs.of(u[:300], i[:300], n_users), Pairs.of(u[300:], i[300:], n_users)
    boost = torch.zeros(n_users, n_items)
    boost[u, i] = 100.0  # every masked item outranks every other one
    scores = torch.from_numpy(rng.standard_normal((n_users, n_items))).float() + boost
    for targets in (train, valid):  # as targets, the masked items themselves: never found
        m = evaluate(lambda b: scores[b], targets, [train, valid], n_items, ks=(10, 20, 50))
        assert all(m[f"{name}@{k}"] == 0 for name in ("recall", "hit") for k in (10, 20, 50))
    unmasked = evaluate(lambda b: scores[b], train, [], n_items, ks=(50,))
    assert unmasked["recall@50"] == 1.0  # without the mask they would all be there


def test_a_model_buffer_returned_as_scores_is_not_written():
    counts = torch.tensor([3.0, 2.0, 1.0])
    evaluate(lambda b: counts.expand(len(b), -1), pairs((0, 1)), [pairs((0, 0))], 3, ks=(1,))
    assert counts.tolist() == [3.0, 2.0, 1.0]


def test_no_cold_target_leaves_the_cold_slice_empty_not_zero():
    m = evaluate(lambda u: SCORES[u], pairs((0, 0)), [], 5, ks=(1,), cold=np.zeros(5, bool))
    assert m["cold/users"] == 0 and m["cold/recall@1"] is None and m["recall@1"] == 1.0

"""Session segmentation of the history (``pipeline.ctr.data.sessions``) on hand-made timestamps."""

from __future__ import annotations

import numpy as np

from pipeline.ctr.data import histories, sessions

# One user's behaviours (item k at TS[k - 1]): sessions at 30-minute gaps are
# A = items 1-2, B = items 3-8 (six, 100 s apart), C = item 9; 10-11 are 1800 s apart exactly: one session.
TS = np.array([0, 100, 5000, 5100, 5200, 5300, 5400, 5500, 20000, 30000, 31800])
ITEMS = np.arange(1, len(TS) + 1)


def cut(sample_ts, length=5, count=2, gap=1800, h=11):
    """The sessions of one sample at ``sample_ts`` whose history is its last ``h`` behaviours before it."""
    hist = np.zeros((1, h), np.int64)
    when = np.zeros((1, h), np.int64)
    kept = ITEMS[TS < sample_ts][-h:]
    hist[0, : len(kept)], when[0, : len(kept)] = kept, TS[kept - 1]
    return sessions(hist, when, np.array([len(kept)]), np.array([sample_ts]), gap, length, count)[0]


def test_gaps_cut_sessions_and_each_keeps_its_most_recent_behaviours_oldest_first():
    got = cut(25000)  # A, B, C before it: the two most recent are B and C
    assert got.tolist() == [[4, 5, 6, 7, 8], [9, 0, 0, 0, 0]]  # B's last five (3 dropped), then C


def test_session_count_and_length_limits():
    assert cut(25000, count=3).tolist() == [[1, 2, 0, 0, 0], [4, 5, 6, 7, 8], [9, 0, 0, 0, 0]]
    assert cut(25000, count=5).tolist()[3:] == [[0] * 5, [0] * 5]  # fewer sessions than slots: trailing padding
    assert cut(25000, length=2, count=3).tolist() == [[1, 2], [7, 8], [9, 0]]


def test_a_gap_of_exactly_the_limit_stays_in_the_session():
    assert cut(40000, count=1).tolist() == [[10, 11, 0, 0, 0]]
    assert cut(40000, count=1, gap=1799).tolist() == [[11, 0, 0, 0, 0]]


def test_no_look_ahead_behaviours_at_or_after_the_sample_are_dropped():
    assert cut(20000).tolist() == [[1, 2, 0, 0, 0], [4, 5, 6, 7, 8]]  # item 9 is at the sample's own second
    # even when the given history holds them (a history built with another cut-off): dropped here
    hist = ITEMS[None, :9]
    when = TS[None, :9]
    got = sessions(hist, when, np.array([9]), np.array([5150]), 1800, 5, 2)[0]
    assert got.tolist() == [[1, 2, 0, 0, 0], [3, 4, 0, 0, 0]]


def test_a_truncated_history_and_an_empty_one():
    assert cut(25000, h=4).tolist() == [[6, 7, 8, 0, 0], [9, 0, 0, 0, 0]]  # the window's oldest session is partial
    assert cut(0).tolist() == [[0] * 5, [0] * 5]


def test_rows_are_independent_and_match_one_by_one():
    """A batch of samples (several users, random gaps) equals each row cut alone."""
    rng = np.random.default_rng(0)
    n, h = 40, 12
    ts = np.sort(rng.integers(0, 10_000, (n, h)), axis=1)
    lengths = rng.integers(0, h + 1, n)
    hist = np.where(np.arange(h) < lengths[:, None], rng.integers(1, 50, (n, h)), 0)
    when = np.where(hist > 0, ts, 0)
    sample = ts.max(1) + rng.integers(-500, 500, n)
    batch = sessions(hist, when, lengths, sample, 700, 3, 4)
    for k in range(n):
        alone = sessions(hist[k : k + 1], when[k : k + 1], lengths[k : k + 1], sample[k : k + 1], 700, 3, 4)[0]
        np.testing.assert_array_equal(batch[k], alone)
        valid = (np.arange(h) < lengths[k]) & (when[k] < sample[k])
        # reference: walk the behaviours in Python
        groups: list[list[int]] = []
        for j in np.flatnonzero(valid):
            if not groups or when[k, j] - when[k, j - 1] > 700:
                groups.append([])
            groups[-1].append(int(hist[k, j]))
        want = np.zeros((4, 3), int)
        for s, g in enumerate(groups[-4:]):
            want[s, : len(g[-3:])] = g[-3:]
        np.testing.assert_array_equal(batch[k], want)


def test_histories_keep_the_behaviours_timestamps_and_the_uncapped_count():
    u = np.ones(5, np.int64)
    i = np.array([5, 6, 7, 8, 9])
    t = np.array([10, 20, 30, 30, 40])
    got = histories(u, t, i, u, t, i, 2)
    assert got.items.tolist() == [[0, 0], [5, 0], [5, 6], [5, 6], [7, 8]]  # ties at 30 are not each other's history
    assert got.ts.tolist() == [[0, 0], [10, 0], [10, 20], [10, 20], [30, 30]]
    assert got.total.tolist() == [0, 1, 2, 2, 4] and got.length.tolist() == [0, 1, 2, 2, 2]

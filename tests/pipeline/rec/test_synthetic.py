"""The synthetic top-K dataset: seeded, power-law popularity, a cold slice held out of training, MMRec files."""

from __future__ import annotations

import dataclasses

import numpy as np

from pipeline.core.params import LabelRule
from pipeline.datasets import read_source
from pipeline.rec import synthetic
from tests.pipeline.rec.test_train import SAMPLE


def test_the_same_seed_gives_the_same_dataset_and_another_seed_another():
    a, b = synthetic.generate(SAMPLE), synthetic.generate(SAMPLE)
    c = synthetic.generate(dataclasses.replace(SAMPLE, seed=1))
    assert np.array_equal(a.item, b.item) and np.array_equal(a.features["image"], b.features["image"])
    assert not np.array_equal(a.item[:100], c.item[:100])


def test_cold_items_never_train_and_every_user_does():
    d = synthetic.generate(SAMPLE)
    assert d.cold.sum() == round(SAMPLE.cold_items * SAMPLE.n_items)
    assert not d.cold[d.item[d.split == 0]].any() and d.cold[d.item].any()
    assert (np.bincount(d.user[d.split == 0], minlength=SAMPLE.n_users) > 0).all()
    assert len(np.unique(d.user * SAMPLE.n_items + d.item)) == len(d.user)  # no duplicate pair


def test_popularity_is_skewed_and_features_follow_the_dims():
    d = synthetic.generate(SAMPLE)
    counts = np.sort(np.bincount(d.item, minlength=SAMPLE.n_items))[::-1]
    assert counts[: SAMPLE.n_items // 10].sum() > 0.25 * counts.sum()  # the top 10% of items: over a quarter
    assert {m: x.shape for m, x in d.features.items()} == {"image": (300, 32), "text": (300, 16)}


def test_written_files_read_back_through_the_mmrec_adapter(tmp_path):
    d = synthetic.generate(SAMPLE)
    synthetic.write(d, tmp_path, "tiny")
    raw = read_source("mmrec", tmp_path, LabelRule(4, None))
    assert raw.interactions.column("split").to_pylist() == d.split.tolist()
    assert raw.interactions.column("video_id").to_pylist() == d.item.astype(str).tolist()
    np.testing.assert_array_equal(raw.features["text"], d.features["text"])

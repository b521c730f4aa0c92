"""Assembling the classifier's inputs: labels, missing labels, bad class sets, sequences, masks."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from pipeline.classify.data import LabelError, encode_labels, load_data, normaliser
from pipeline.core import store
from pipeline.params import load_params
from tests.conftest import ROOT
from tests.pipeline.classify.fixtures import FRAMES, MELS, SEGMENTS, VIS_DIM, corpus, write_stores


def params_at(root, **classify):
    p = load_params(ROOT / "params.yaml")
    paths = dataclasses.replace(
        p.paths,
        items=str(root / "features/items.parquet"),
        visual_features=str(root / "features/stores"),
        audio_features=str(root / "features/stores/audio.parquet"),
        reduce_state=str(root / "features/reduce_state"),
    )
    return dataclasses.replace(p, paths=paths, classify=dataclasses.replace(p.classify, **classify))


def test_sequences_and_vectors_are_aligned_with_masks(tmp_path):
    c = corpus()
    write_stores(tmp_path, c)
    data = load_data(params_at(tmp_path))
    assert data.classes == ("cool_noise", "cool_tone", "warm_noise", "warm_tone")
    assert data.inputs["visual"].shape == (48, FRAMES, VIS_DIM) and data.inputs["audio"].shape == (48, SEGMENTS, MELS)
    assert np.array_equal(data.masks["audio"], c["heard"]) and data.masks["visual"].all()
    assert np.allclose(data.inputs["visual"], c["seq"] / 2)  # through the reduce state (project: true)
    assert [b.kind for b in data.branches] == ["sequence", "sequence"]
    p = params_at(tmp_path)
    vec = load_data(
        dataclasses.replace(
            p,
            classify=dataclasses.replace(
                p.classify, audio=dataclasses.replace(p.classify.audio, input="vector", vector="mfcc")
            ),
        )
    )
    assert vec.inputs["audio"].shape == (48, MELS + 1) and np.array_equal(vec.masks["audio"], c["heard"])


def test_missing_labels_are_excluded_and_counted(tmp_path):
    c = corpus()
    labels = [None if i in (0, 5) else ("" if i == 7 else lab) for i, lab in enumerate(c["label"])]
    write_stores(tmp_path, c, labels)
    data = load_data(params_at(tmp_path))
    assert data.n_missing_labels == 3 and len(data.y) == 45 and "v000" not in data.video_ids


def test_projection_needs_a_state_of_the_same_input_dims(tmp_path):
    write_stores(tmp_path, corpus())
    p = params_at(tmp_path)
    audio = dataclasses.replace(p.classify.audio, project=True, vector="resnet152")
    with pytest.raises(store.StoreError, match="set project: false"):
        load_data(dataclasses.replace(p, classify=dataclasses.replace(p.classify, audio=audio)))
    raw = load_data(
        dataclasses.replace(
            p, classify=dataclasses.replace(p.classify, visual=dataclasses.replace(p.classify.visual, project=False))
        )
    )
    assert np.allclose(raw.inputs["visual"], corpus()["seq"])


def test_no_sequence_column_says_how_to_get_one(tmp_path):
    write_stores(tmp_path, corpus())
    p = params_at(tmp_path)
    resnet = dataclasses.replace(p.visual.sections["resnet152"], output="logits")
    p = dataclasses.replace(
        p, visual=dataclasses.replace(p.visual, sections={**p.visual.sections, "resnet152": resnet})
    )
    with pytest.raises(store.StoreError, match="keep_sequence"):
        load_data(p)


def test_a_class_absent_from_training_is_an_error():
    split = np.array(["train", "train", "test", "test"])
    with pytest.raises(LabelError, match=r"\['c'\] have no video in the training split"):
        encode_labels(["a", "b", "c", "a"], split)


def test_a_single_class_is_an_error(tmp_path):
    c = corpus()
    write_stores(tmp_path, c, ["warm_tone"] * len(c["label"]))
    with pytest.raises(LabelError, match="a classifier needs at least two"):
        load_data(params_at(tmp_path))


def test_normaliser_uses_the_given_rows_and_keeps_constant_features():
    x = np.zeros((4, 2, 3), np.float32)
    x[:2, :, 0] = [[1, 3], [1, 3]]
    x[2:, :, 0] = 100.0  # not a training row
    mean, std = normaliser(x, np.array([True, True, False, False]))
    assert mean[0] == 2 and std[0] == 1 and std[1] == 1 and mean[1] == 0

"""Training: one step lowers the loss, seeds reproduce, fusion beats one modality, checkpoints round-trip."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from pipeline.classify.data import load_data
from pipeline.classify.train import (
    build_classifier,
    fit,
    load_checkpoint,
    model_spec,
    objective,
    predict_proba,
    save_checkpoint,
    tensors,
    train_step,
)
from pipeline.core.adam import Adam, ParamGroup
from tests.pipeline.classify.fixtures import corpus, write_stores
from tests.pipeline.classify.test_data import params_at

FAST = dict(hidden=16, epochs=30, patience=30, lr=0.01, batch_size=16, threads=1)


@pytest.fixture(scope="module")
def params(tmp_path_factory):
    root = tmp_path_factory.mktemp("classify")
    write_stores(root, corpus())
    return params_at(root, **FAST)


@pytest.fixture(scope="module")
def data(params):
    return load_data(params)


def accuracy(result, data) -> float:
    rows = np.flatnonzero(data.split != "train")
    return float((predict_proba(result.model, tensors(data, rows)).argmax(1) == data.y[rows]).mean())


def test_one_training_step_lowers_the_loss_on_a_fixed_batch(params, data):
    torch.manual_seed(0)
    cfg = dataclasses.replace(params.classify, dropout=0.0)
    model = build_classifier(model_spec(cfg, data))
    opt = Adam([ParamGroup.of(model.parameters(), 1e-2)])
    batch = tensors(data, np.arange(16))
    before = objective(model(batch), batch["label"], cfg.shared_private)[0].item()
    train_step(model, opt, batch, cfg.shared_private)
    model.train()
    assert objective(model(batch), batch["label"], cfg.shared_private)[0].item() < before


def test_same_seed_same_model_and_fusion_beats_each_single_modality(params, data):
    cfg = params.classify
    first, again = fit(cfg, data), fit(cfg, data)
    assert [r["train_loss"] for r in first.curve] == [r["train_loss"] for r in again.curve]
    fused = accuracy(first, data)
    assert fused >= 0.8  # a video without audio is a coin toss between two classes
    for m in ("visual", "audio"):
        alone = accuracy(fit(dataclasses.replace(cfg, modalities=(m,)), data), data)
        assert alone <= 0.75 < fused


def test_checkpoint_round_trip_gives_identical_predictions(params, data, tmp_path):
    result = fit(dataclasses.replace(params.classify, epochs=3), data)
    save_checkpoint(tmp_path / "model.pt", result.model)
    loaded = load_checkpoint(tmp_path / "model.pt")
    batch = tensors(data, np.arange(len(data.y)))
    assert np.array_equal(predict_proba(loaded, batch), predict_proba(result.model, batch))
    assert loaded.spec == result.model.spec


def test_a_video_without_audio_is_predicted_from_the_mask_not_the_values(params, data):
    result = fit(dataclasses.replace(params.classify, epochs=3), data)
    batch = tensors(data, np.arange(len(data.y)))
    silent = ~batch["audio_mask"]
    assert silent.any()
    junk = dict(batch, audio=batch["audio"].clone())
    junk["audio"][silent] = torch.randn_like(junk["audio"][silent]) * 1e3
    assert np.array_equal(predict_proba(result.model, junk), predict_proba(result.model, batch))

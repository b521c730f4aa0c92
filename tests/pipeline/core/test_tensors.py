"""pipeline.core.tensors: device resolution, batch slicing, byte-reproducible checkpoints."""

from __future__ import annotations

import pytest
import torch

from pipeline.core.config import ConfigError
from pipeline.core.tensors import resolve_device, save, slice_batch


def test_checkpoints_are_byte_identical_across_saves(tmp_path):
    blob = {"state": {"w": torch.arange(6.0).view(2, 3)}, "spec": '{"k": 1}'}
    a, b = save(blob, tmp_path / "a" / "model.pt"), save(blob, tmp_path / "b.pt")
    assert a.read_bytes() == b.read_bytes()  # torch.save to a temp file names the archive after it
    assert torch.equal(torch.load(a, weights_only=True)["state"]["w"], blob["state"]["w"])


def test_slice_batch_and_device(monkeypatch):
    batch = {"x": torch.arange(10), "y": torch.arange(10) * 2}
    out = slice_batch(batch, torch.tensor([1, 3]))
    assert out["x"].tolist() == [1, 3] and out["y"].tolist() == [2, 6]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto", "classify.device") == torch.device("cpu")
    with pytest.raises(ConfigError, match="classify.device=cuda but CUDA is not available"):
        resolve_device("cuda", "classify.device")

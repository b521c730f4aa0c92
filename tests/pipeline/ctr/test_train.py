from __future__ import annotations

import dataclasses

import numpy as np
import pyarrow as pa
import pytest
import torch

from models.ctr.base import FeatureSpec
from pipeline.core import store
from pipeline.core.params import CtrFeatures
from pipeline.ctr.build import build_samples
from pipeline.ctr.train import CONTENT_CLIP, ContentError, fit, load_content, table_tensors
from tests.models.test_ctr_models import CFG
from tests.pipeline.ctr.test_data import cfg as data_cfg
from tests.pipeline.ctr.test_data import raw_log


def items_parquet(path, ids, present, x=None):
    x = np.arange(len(ids) * 3, dtype=np.float32).reshape(len(ids), 3) + 1 if x is None else x  # (N, 3)
    table = pa.table({"video_id": ids, "visual": store.vector_array(x), "visual_present": pa.array(present)})
    store.write_table(table, path, store.make_meta("reduce", dims={"visual": [3]}))
    return x


def test_content_is_aligned_to_item_codes_and_masked(tmp_path):
    vocab = pa.table({"item": pa.array([1, 2, 3], pa.int32()), "video_id": ["a", "b", "c"]})
    x = items_parquet(tmp_path / "items.parquet", ["c", "a", "zz"], [True, False, True])
    content = load_content(tmp_path / "items.parquet", vocab, ("visual",))
    matrix, mask = content["visual"]
    assert mask.tolist() == [False, False, False, True]  # padding; a not present; b absent; c present
    assert torch.equal(matrix[3], torch.from_numpy(x[0])) and not matrix[:3].any()
    x[0, 1] = 1e12  # a degenerate z-scored dimension: clipped, not passed on
    items_parquet(tmp_path / "bad.parquet", ["c", "a", "zz"], [True, False, True], x)
    matrix, _ = load_content(tmp_path / "bad.parquet", vocab, ("visual",))["visual"]
    assert matrix[3].tolist() == [x[0, 0], CONTENT_CLIP, x[0, 2]]
    with pytest.raises(ContentError, match=r"no modality column\(s\) \['audio'\]"):
        load_content(tmp_path / "items.parquet", vocab, ("visual", "audio"))


def test_table_tensors_and_fit_with_early_stopping():
    feats = CtrFeatures(("kind",), ("genre",), ("length",))
    built = build_samples(raw_log(), data_cfg(features=feats))
    data = {s: table_tensors(t) for s, t in built.splits.items()}
    train = data["train"]
    n = built.splits["train"].num_rows
    assert train["cat"].shape == (n, 1) and train["multi"].shape == (n, 1, 2) and train["num"].shape == (n, 1)
    assert train["hist"].shape == (n, 4) and train["label"].dtype == torch.float32
    spec = FeatureSpec.from_meta(built.spec)
    cfg = dataclasses.replace(CFG, model="din", use_content=False, epochs=5, patience=2)
    result = fit("din", spec, cfg, train, data["valid"], None)
    assert 1 <= len(result.curve) <= 5 and 1 <= result.best_epoch <= len(result.curve)
    assert result.train_samples == n * len(result.curve)

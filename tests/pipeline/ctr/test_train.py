from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pyarrow as pa
import pytest
import torch

from models.ctr.base import FeatureSpec
from pipeline.core import store
from pipeline.ctr.build import build_samples, write_built
from pipeline.ctr.experiment import load_dataset, run
from pipeline.ctr.metrics import evaluate
from pipeline.ctr.train import CONTENT_CLIP, ContentError, fit, load_content, predict, table_tensors
from pipeline.params import CtrFeatures
from tests.models.test_ctr_models import CFG
from tests.pipeline.ctr.fixtures import SIDE_FEATURES, side_features_log
from tests.pipeline.ctr.test_data import cfg as data_cfg
from tests.pipeline.ctr.test_data import raw_log


def items_parquet(path, ids, present, x=None):
    x = np.arange(len(ids) * 3, dtype=np.float32).reshape(len(ids), 3) + 1 if x is None else x  # (N, 3)
    table = pa.table({"video_id": ids, "visual": store.vector_array(x), "visual_present": pa.array(present)})
    store.write_table(table, path, store.make_meta("ctr_data", dims={"visual": [3]}))
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
    data = {s: table_tensors(t, built.spec) for s, t in built.splits.items()}
    train = data["train"]
    n = built.splits["train"].num_rows
    assert train["cat"].shape == (n, 1) and train["multi"].shape == (n, 1, 2) and train["num"].shape == (n, 1)
    assert train["hist"].shape == (n, 4) and train["label"].dtype == torch.float32
    spec = FeatureSpec.from_meta(built.spec)
    cfg = dataclasses.replace(CFG, model="din", use_content=False, epochs=5, patience=2)
    result = fit("din", spec, cfg, train, data["valid"], None)
    assert 1 <= len(result.curve) <= 5 and 1 <= result.best_epoch <= len(result.curve)
    assert result.train_samples == n * len(result.curve)


def _scores(tmp_path, features: dict[str, tuple[str, ...]], name: str):
    """ctr_data's tables written and read back (the spec round-trips through JSON), then trained and scored."""
    built = build_samples(side_features_log(), data_cfg(features=CtrFeatures(**features)))
    write_built(built, str(tmp_path / name), {})
    data = load_dataset(tmp_path / name)
    cfg = dataclasses.replace(CFG, model="deepfm", use_content=False, epochs=2, patience=2)
    _, _, scores = run(cfg, data)
    return data, scores


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # ten tiny trainings: thread start-up would cost more than the work
    yield
    torch.set_num_threads(threads)


def test_side_features_in_any_params_order_meet_their_own_vocabularies(tmp_path, one_thread):
    """Swapping any two fields of any kind in ctr_data.features changes nothing: same tensors, same scores."""
    base = {kind: tuple(sorted(names)) for kind, names in SIDE_FEATURES.items()}
    data, want = _scores(tmp_path, base, "base")
    assert data.spec.categorical == (3, 8, 5)  # gender, occupation, region (+ unknown each)
    assert data.spec.multi == (6, 4, 10) and data.spec.n_numeric == 3  # genres, moods, tags
    assert len(want) > 50 and np.std(want) > 1e-4  # real, varied scores
    for kind, names in base.items():
        for a, b in itertools.combinations(range(len(names)), 2):
            order = list(names)
            order[a], order[b] = order[b], order[a]
            got_data, got = _scores(tmp_path, base | {kind: tuple(order)}, f"{kind}-{a}{b}")
            assert got_data.spec == data.spec, (kind, order)
            for key in ("cat", "multi", "num"):
                assert torch.equal(got_data.tensors["train"][key], data.tensors["train"][key]), (kind, order, key)
            np.testing.assert_array_equal(got, want, err_msg=f"{kind} {order}")


@pytest.mark.parametrize("monitor", ["auc", "logloss"])
def test_early_stopping_keeps_the_epoch_with_the_best_monitored_score(monitor, one_thread):
    built = build_samples(side_features_log(), data_cfg())
    data = {s: table_tensors(t, built.spec) for s, t in built.splits.items()}
    spec = FeatureSpec.from_meta(built.spec)
    # random labels: the validation logloss climbs as the model overfits, its AUC wanders
    cfg = dataclasses.replace(CFG, model="deepfm", use_content=False, epochs=6, patience=6, lr=0.05, monitor=monitor)
    result = fit("deepfm", spec, cfg, data["train"], data["valid"], None)
    losses = [r["valid_logloss"] for r in result.curve]
    aucs = [r["valid_auc"] for r in result.curve]
    best = int(np.argmin(losses) if monitor == "logloss" else np.argmax(aucs)) + 1
    assert len(result.curve) == 6 and result.best_epoch == best
    p = predict(result.model, data["valid"], 64)  # the restored weights are that epoch's
    y = data["valid"]["label"].numpy()
    assert evaluate(y, p, data["valid"]["user"].numpy(), np.zeros(len(y), bool))["logloss"] == pytest.approx(
        losses[best - 1], rel=1e-5
    )
    trained = set(data["train"]["item"].tolist())
    assert set(torch.nonzero(result.model.seen).flatten().tolist()) == trained | {0}  # items of the training samples


def test_tables_of_an_older_ctr_data_are_a_one_line_error(tmp_path):
    built = build_samples(raw_log(), data_cfg())
    write_built(built, str(tmp_path), {})
    old = store.read_table(tmp_path / "test.parquet").drop_columns(["hist_ts", "hist_total"])
    store.write_table(old, tmp_path / "test.parquet", store.make_meta("ctr_data", spec=built.spec))
    with pytest.raises(
        store.StoreError, match=r"test.parquet lacks columns \['hist_ts', 'hist_total'\]; rerun ctr_data"
    ):
        load_dataset(tmp_path)

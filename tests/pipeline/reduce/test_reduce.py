from __future__ import annotations

import dataclasses
import re

import numpy as np
import pyarrow as pa
import pytest
from sklearn.decomposition import PCA

from pipeline.core import store
from pipeline.core.modality import ModalityReduceConfig
from pipeline.reduce.__main__ import main as reduce_main
from pipeline.reduce.fit import ReduceError, fit_modality, load_states, save_states
from pipeline.reduce.items import Source, build_items

RNG = np.random.default_rng(0)
N, D_VIS, D_AUD = 60, 16, 8
IDS = [f"v{i:02d}" for i in range(N)]
SPLIT = ["train" if i < 40 else "valid" if i < 50 else "test" for i in range(N)]
FIT = dict(solver="full", cap=True, seed=0, max_fit_mb=64, batch_rows=32)


def mod(**kw) -> ModalityReduceConfig:
    base = dict(enabled=True, column="x", n_components=4, whiten=False, norm="none")
    return ModalityReduceConfig(**{**base, **kw})


def low_rank(n: int, d: int, rank: int = 3) -> np.ndarray:
    return (RNG.normal(size=(n, rank)) @ RNG.normal(size=(rank, d)) * 3 + RNG.normal(size=(n, d)) * 0.1).astype(
        np.float32
    )


def write_store(path, ids, x, meta, has_audio=None, column="x"):
    cols = {"video_id": ids, column: store.vector_array(x)}
    if has_audio is not None:
        cols["has_audio"] = pa.array(has_audio)
    store.write_table(pa.table(cols), path, meta)
    return str(path)


@pytest.fixture
def corpus(tmp_path, params):
    vis, aud = low_rank(N, D_VIS), low_rank(N, D_AUD)
    has_audio = [i % 7 != 0 for i in range(N)]
    aud[~np.array(has_audio)] = 0
    manifest = pa.table({"video_id": IDS, "split": SPLIT, "label": ["a"] * N, "has_audio": has_audio})
    sources = {
        "resnet152": Source(
            write_store(tmp_path / "v.parquet", IDS, vis, store.make_meta("visual", extractor="resnet152")),
            "x",
            None,
            {"extractor": "resnet152"},
        ),
        "mfcc": Source(
            write_store(tmp_path / "a.parquet", IDS, aud, store.make_meta("audio"), has_audio),
            "x",
            "has_audio",
            {"stage": "audio"},
        ),
    }
    cfg = dataclasses.replace(
        params.reduce,
        solver="full",
        modalities={
            **params.reduce.modalities,
            "resnet152": mod(norm="zscore"),
            "mfcc": mod(n_components=3, norm="minmax"),
        },
    )
    return manifest, sources, cfg, vis, aud


def test_transform_equals_scikit_learn(corpus):
    _, _, _, vis, _ = corpus
    train = vis[:40]
    for whiten in (False, True):
        state, _ = fit_modality(train, mod(whiten=whiten), "resnet152", **FIT)
        ref = PCA(n_components=4, svd_solver="full", whiten=whiten).fit(train.astype(np.float64))
        np.testing.assert_allclose(state.transform(vis), ref.transform(vis.astype(np.float64)), rtol=1e-4, atol=1e-4)


def test_variance_target_keeps_the_smallest_sufficient_k(corpus):
    vis = corpus[3][:40]
    state, curve = fit_modality(vis, mod(n_components=0.99), "resnet152", **FIT)
    k = len(state.components)
    assert curve[k - 1] >= 0.99 and (k == 1 or curve[k - 2] < 0.99)
    assert k == 3  # the data has rank 3 plus small noise


def test_normalisers_hold_on_the_training_split(corpus):
    table, *_ = build_items(*corpus[:3])
    train = np.array(SPLIT) == "train"
    z = store.vectors(table.column("resnet152"))[train]
    np.testing.assert_allclose(z.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(z.std(axis=0), 1, atol=1e-4)
    present = np.array(table.column("mfcc_present").to_pylist())
    m = store.vectors(table.column("mfcc"))[train & present]
    np.testing.assert_allclose(m.min(axis=0), 0, atol=1e-6)
    np.testing.assert_allclose(m.max(axis=0), 1, atol=1e-6)


def test_no_leakage_test_rows_do_not_change_the_fit(corpus, tmp_path):
    manifest, sources, cfg, vis, aud = corpus
    _, states_a, _, _ = build_items(manifest, sources, cfg)
    vis_b = vis.copy()
    vis_b[50:] = RNG.normal(size=(10, D_VIS)) * 100  # test rows only
    src_b = dict(
        sources,
        resnet152=dataclasses.replace(
            sources["resnet152"],
            path=write_store(tmp_path / "v2.parquet", IDS, vis_b, store.make_meta("visual", extractor="resnet152")),
        ),
    )
    table_b, states_b, _, _ = build_items(manifest, src_b, cfg)
    for name in states_a:
        for f in ("mean", "components", "shift", "scale"):
            np.testing.assert_array_equal(getattr(states_a[name], f), getattr(states_b[name], f))


def test_silent_videos_are_masked_zero_and_never_fitted(corpus):
    table, states, _, metrics = build_items(*corpus[:3])
    present = np.array(table.column("mfcc_present").to_pylist())
    assert present.tolist() == [i % 7 != 0 for i in range(N)]
    assert not store.vectors(table.column("mfcc"))[~present].any()
    assert metrics["mfcc"]["no_signal"] == (~present).sum()
    assert metrics["mfcc"]["n_train"] == sum(1 for i in range(40) if i % 7 != 0)


def test_every_video_silent_gives_zeros_not_nan(corpus, tmp_path):
    manifest, sources, cfg, _, aud = corpus
    silent = Source(
        write_store(tmp_path / "s.parquet", IDS, np.zeros_like(aud), store.make_meta("audio"), [False] * N),
        "x",
        "has_audio",
        {"stage": "audio"},
    )
    table, *_ = build_items(manifest, dict(sources, mfcc=silent), cfg)
    out = store.vectors(table.column("mfcc"))
    assert np.isfinite(out).all() and not out.any()
    constant = Source(
        write_store(tmp_path / "c.parquet", IDS, np.ones_like(aud), store.make_meta("audio"), [True] * N),
        "x",
        "has_audio",
        {"stage": "audio"},
    )
    table, *_ = build_items(manifest, dict(sources, mfcc=constant), cfg)
    assert np.isfinite(store.vectors(table.column("mfcc"))).all()


@pytest.mark.parametrize("rule", ["zero", "drop"])
def test_missing_videos_follow_the_rule_and_are_counted(corpus, tmp_path, rule):
    manifest, sources, cfg, vis, _ = corpus
    partial = Source(
        write_store(tmp_path / "p.parquet", IDS[5:], vis[5:], store.make_meta("visual", extractor="resnet152")),
        "x",
        None,
        {"extractor": "resnet152"},
    )
    table, _, _, metrics = build_items(
        manifest, dict(sources, resnet152=partial), dataclasses.replace(cfg, missing=rule)
    )
    assert metrics["resnet152"]["missing"] == 5
    if rule == "zero":
        assert table.num_rows == N and table.column("resnet152_present").to_pylist()[:5] == [False] * 5
        assert not store.vectors(table.column("resnet152"))[:5].any()
    else:
        assert table.num_rows == N - 5 and metrics["dropped"] == 5 and table.column("video_id")[0].as_py() == "v05"


def test_too_many_components_cap_or_error(corpus):
    vis = corpus[3][:10]
    state, _ = fit_modality(vis, mod(n_components=50), "resnet152", **FIT)
    assert len(state.components) == 9 and state.info["capped"]  # 10 centred rows span 9 directions
    with pytest.raises(
        ReduceError, match=r"reduce.resnet152.n_components=50 exceeds min\(training rows - 1=9, dims=16\)"
    ):
        fit_modality(vis, mod(n_components=50), "resnet152", **{**FIT, "cap": False})


def test_store_that_does_not_match_params_is_a_clear_error(corpus, tmp_path):
    manifest, sources, cfg, vis, _ = corpus
    wrong = dataclasses.replace(
        sources["resnet152"],
        path=write_store(tmp_path / "w.parquet", IDS, vis, store.make_meta("visual", extractor="c3d")),
    )
    with pytest.raises(store.StoreError, match="metadata 'extractor' is 'c3d', expected 'resnet152'"):
        build_items(manifest, dict(sources, resnet152=wrong), cfg)
    with pytest.raises(store.StoreError, match="params key reduce.resnet152.column"):
        build_items(manifest, dict(sources, resnet152=dataclasses.replace(sources["resnet152"], column="pool")), cfg)


@pytest.mark.parametrize("solver", ["randomized", "incremental"])
def test_large_corpus_solvers_find_the_same_subspace(corpus, solver):
    vis = corpus[3][:40]
    full, _ = fit_modality(vis, mod(n_components=3), "resnet152", **FIT)
    other, _ = fit_modality(vis, mod(n_components=3), "resnet152", **{**FIT, "solver": solver})
    overlap = np.linalg.svd(full.components @ other.components.T, compute_uv=False)
    assert overlap.min() > 0.999  # same 3-d subspace, whatever the signs and rotation
    with pytest.raises(ReduceError, match="variance target"):
        fit_modality(vis, mod(n_components=0.9), "resnet152", **{**FIT, "solver": solver})


def test_saved_state_round_trips_and_applies_without_refit(corpus, tmp_path):
    manifest, sources, cfg, *_ = corpus
    table, states, _, _ = build_items(manifest, sources, cfg)
    again, *_ = build_items(manifest, sources, cfg)
    assert table.equals(again)  # deterministic
    save_states(tmp_path / "state", states, {"sources": {n: dataclasses.asdict(s) for n, s in sources.items()}})
    loaded, doc = load_states(tmp_path / "state")
    assert set(loaded) == {"resnet152", "mfcc"} and doc["modalities"]["resnet152"]["n_components"] == 4
    assert reduce_main(["apply", "--state", str(tmp_path / "state"), "--out", str(tmp_path / "new.parquet")]) == 0
    applied = store.read_table(tmp_path / "new.parquet")
    for name in ("resnet152", "mfcc"):
        np.testing.assert_allclose(store.vectors(applied.column(name)), store.vectors(table.column(name)), atol=1e-6)
        assert applied.column(f"{name}_present").equals(table.column(f"{name}_present"))


def test_capped_components_stay_on_the_scale_of_the_training_rows(corpus):
    # With as many components as rows, the last one has no training variance; z-scoring it
    # used to multiply the other splits' noise by ~1e12.
    vis = corpus[3]
    state, _ = fit_modality(vis[:12], mod(n_components=40, norm="zscore"), "resnet152", **FIT)
    assert len(state.components) == 11
    assert np.abs(state.transform(vis[12:])).max() < 1e3


def _cap_logs(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "capped to" in r.getMessage()]


# Every fit path: (training rows, n_components, solver) -> (K kept, capped). The log, the state's info
# (what metrics/reduce.json reports) and the K must agree.
ROWS = 10
CAP_PATHS = {
    "full": (ROWS, 50, "full", 9, True),  # min(10 - 1, 16)
    "randomized": (ROWS, 50, "randomized", 9, True),
    "incremental": (ROWS, 50, "incremental", 9, True),
    "constant rows": ("constant", 50, "full", 9, True),  # 10 identical rows: nothing to project, still capped
    "one row": (1, 50, "full", 16, True),  # nothing fitted: only the dims limit, min(50, 16)
    "one row, within dims": (1, 4, "full", 4, False),
    "no rows": (0, 50, "full", 16, True),
    "not capped": (ROWS, 5, "full", 5, False),
    "at the limit": (ROWS, 9, "full", 9, False),
    "variance target": (ROWS, 0.9, "full", None, False),
    "no pca": (ROWS, None, "full", 16, False),
}


@pytest.mark.parametrize("path", CAP_PATHS)
def test_capped_in_the_metrics_whenever_the_log_says_so(corpus, caplog, path):
    rows, target, solver, k, capped = CAP_PATHS[path]
    x = np.ones((ROWS, D_VIS), np.float32) if rows == "constant" else corpus[3][:rows]
    caplog.set_level("WARNING", logger="pipeline.reduce.fit")
    state, _ = fit_modality(x, mod(n_components=target), "resnet152", **{**FIT, "solver": solver})
    if k is not None:
        assert len(state.components) == state.info["n_components"] == k
    assert state.info["capped"] is capped
    if capped:
        assert _cap_logs(caplog) == [f"reduce.resnet152.n_components={target} capped to {k} = " + _why(rows)]
        with pytest.raises(ReduceError, match=re.escape(f"n_components={target} exceeds {_why(rows)}")):
            fit_modality(x, mod(n_components=target), "resnet152", **{**FIT, "solver": solver, "cap": False})
    else:
        assert _cap_logs(caplog) == []


def _why(rows) -> str:
    n = ROWS if rows == "constant" else rows
    if n < 2:
        return f"dims={D_VIS} (fewer than 2 training rows: nothing fitted)"
    return f"min(training rows - 1={n - 1}, dims={D_VIS})"


def test_reduce_metrics_say_capped_as_the_log_does(corpus, caplog, tmp_path):
    """build_items (what the stage writes to metrics/reduce.json) on every-silent and constant audio."""
    manifest, sources, cfg, _, aud = corpus
    cfg = dataclasses.replace(cfg, modalities={**cfg.modalities, "mfcc": mod(n_components=80, norm="zscore")})
    caplog.set_level("WARNING", logger="pipeline.reduce.fit")
    for name, x, heard, k in (
        ("silent", np.zeros_like(aud), [False] * N, D_AUD),  # < 2 training rows: K = min(80, dims 8)
        ("constant", np.ones_like(aud), [True] * N, D_AUD),  # 40 identical rows: min(39, 8)
        ("signal", aud, [i % 7 != 0 for i in range(N)], D_AUD),
    ):
        caplog.clear()
        mfcc = Source(
            write_store(tmp_path / f"{name}.parquet", IDS, x, store.make_meta("audio"), heard),
            "x",
            "has_audio",
            {"stage": "audio"},
        )
        table, _, _, metrics = build_items(manifest, dict(sources, mfcc=mfcc), cfg)
        assert metrics["mfcc"]["capped"] is True and metrics["mfcc"]["n_components"] == k, name
        assert [m for m in _cap_logs(caplog) if "mfcc" in m] == [
            f"reduce.mfcc.n_components=80 capped to {k} = "
            + (
                "dims=8 (fewer than 2 training rows: nothing fitted)"
                if name == "silent"
                else f"min(training rows - 1={metrics['mfcc']['n_train'] - 1}, dims=8)"
            )
        ], name
        assert store.vectors(table.column("mfcc")).shape == (N, k)
    assert metrics["resnet152"]["capped"] is False and not [m for m in _cap_logs(caplog) if "resnet152" in m]

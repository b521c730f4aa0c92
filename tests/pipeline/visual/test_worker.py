"""Batched runner, failures, incremental store and resume, with a tiny stand-in extractor (mean colour per video)."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from torch import nn

from pipeline import show
from pipeline.core import store
from pipeline.decode import decoded
from pipeline.visual import weights
from pipeline.visual.batching import Item, extract, read_shard
from pipeline.visual.extractor import Extractor, output_paths
from pipeline.visual.inference import Engine, Placement
from pipeline.visual.worker import VisualWorker, extract_store, store_meta
from tests.pipeline.visual.helpers import random_frames, write_decoded

T, S = 4, 8
CPU = Placement(torch.device("cpu"), "fp32", 1)


class MeanColour(Extractor):
    """(B, T, H, W, C) -> mean colour (3-d) per video; ``bad`` video ids give NaN, ``crash`` raises."""

    name = "meancolour"

    def __init__(self, bad=(), crash_after=None):
        super().__init__(cfg={"weights": "random"}, num_frames=T)
        self.bad, self.crash_after, self.calls, self.ids = set(bad), crash_after, 0, []

    def build(self) -> nn.Module:
        return nn.Identity()

    def preprocess(self, frames: torch.Tensor) -> torch.Tensor:
        return frames.float().permute(0, 4, 1, 2, 3)  # (B, C, T, H, W)

    def head(self, model: nn.Module) -> nn.Module:
        return model

    def aggregate(self, feats: torch.Tensor, batch: int) -> dict[str, torch.Tensor]:
        self.calls += 1
        if self.crash_after is not None and self.calls > self.crash_after:
            raise KeyboardInterrupt  # a user stopping the run
        out = feats.mean(dim=(2, 3, 4))  # (B, 3)
        if self.bad and feats.flatten(1)[:, 0].eq(255).any():
            if batch > 1:
                raise RuntimeError("simulated kernel failure")
            out = out * float("nan")
        return {"mean": out}

    def dims(self) -> dict[str, list[int]]:
        return {"mean": [3]}


def videos(n: int) -> list[tuple[str, np.ndarray, bool]]:
    return [(f"v{i:02d}", random_frames(i, T, S), i == 1) for i in range(n)]


def test_results_in_order_and_independent_of_batch_size(tmp_path):
    root = write_decoded(tmp_path / "dec", videos(7), T, S)
    items = [it for s in (0, 1) for it in read_shard(root, s, [T, S, S, 3])]
    runs = {b: list(extract(Engine(MeanColour(), nn.Identity(), CPU), items, b)) for b in (1, 3, 8)}
    for _b, results in runs.items():
        assert [r.video_id for r in results] == [it.video_id for it in items]
        got = np.stack([r.features["mean"] for r in results])
        want = np.stack([it.frames.reshape(-1, 3).mean(0) for it in items])
        np.testing.assert_allclose(got, want, rtol=1e-5)
        assert [r.padded for r in results] == [it.video_id == "v01" for it in items]


def test_bad_blob_and_failing_video_become_failures(tmp_path):
    vids = videos(5)
    vids[2] = ("v02", b"\x00" * 10, False)  # corrupted frames blob
    vids[3] = ("v03", np.full((T, S, S, 3), 255, np.uint8), False)  # the model fails on this one
    root = write_decoded(tmp_path / "dec", vids, T, S)
    items = [it for s in (0, 1) for it in read_shard(root, s, [T, S, S, 3])]
    results = {r.video_id: r for r in extract(Engine(MeanColour(bad={"v03"}), nn.Identity(), CPU), items, 4)}
    assert results["v02"].reason == "bad_frames" and "10 bytes" in results["v02"].message
    assert results["v03"].reason == "extract_error" and "non-finite" in results["v03"].message
    assert all(results[v].features is not None for v in ("v00", "v01", "v04"))  # batch retried per video


def _stage(tmp_path, ex, root):
    engine = Engine(ex, nn.Identity(), CPU)
    meta = store_meta(engine, weights.WeightsInfo("random", "test", None), decoded.read_meta(root))
    return extract_store(VisualWorker(engine, str(root), 2), tmp_path / "features", meta)


def test_store_written_with_metadata_and_failures(tmp_path):
    vids = videos(6)
    vids[4] = ("v04", b"garbage", False)
    root = write_decoded(tmp_path / "dec", vids, T, S, shards=3)
    summary = _stage(tmp_path, MeanColour(), root)
    final, fail_path = output_paths(tmp_path / "features", "meancolour")
    table = store.read_table(final, expect={"stage": "visual", "extractor": "meancolour", "weights": "random"})
    assert sorted(table.column("video_id").to_pylist()) == ["v00", "v01", "v02", "v03", "v05"]
    assert table.schema.field("mean").type == store.vector_type(3)
    assert store.read_meta(final)["dims"] == {"mean": [3]}
    fails = pq.read_table(fail_path).to_pylist()
    assert [(f["video_id"], f["reason"], f["stage"]) for f in fails] == [("v04", "bad_frames", "visual")]
    assert (summary.rows, summary.total, summary.computed) == (5, 6, 6)
    assert sorted(p.name for p in final.iterdir()) == ["_complete.json"] + [f"shard-00{s}.parquet" for s in range(3)]
    assert store.completion(final)["failures"] == 1
    assert pq.read_table(final).num_rows == 5  # pyarrow reads the folder as one dataset: the record is not a file of it


def test_interrupted_run_resumes_without_recomputing(tmp_path):
    root = write_decoded(tmp_path / "dec", videos(12), T, S, shards=3)
    shards = decoded.read_index(root).column("shard").to_pylist()
    first = shards.count(min(shards))
    with pytest.raises(KeyboardInterrupt):  # batches of 2: dies in the batch after the first shard's last
        _stage(tmp_path, MeanColour(crash_after=(first + 1) // 2 + 1), root)
    final, _ = output_paths(tmp_path / "features", "meancolour")
    done = [int(p.name[6:9]) for p in sorted(final.glob("shard-???.parquet"))]
    assert done and min(shards) in done and len(done) < len(set(shards))  # only complete shards committed
    assert not list(final.glob(".*.tmp"))
    # the shards that exist are not read as the store: no completion record, readers name the stage
    with pytest.raises(store.StoreError, match=r"incomplete .*re-run it: dvc repro visual@meancolour"):
        store.read_table(final)
    with pytest.raises(store.StoreError, match="incomplete"):
        store.read_vectors(final, "mean")
    assert "INCOMPLETE" in show.describe(final) and "INCOMPLETE" not in show.describe(root)
    assert store.read_table(final, complete=False).num_rows == sum(s in done for s in shards)  # on request
    resumed = MeanColour()
    summary = _stage(tmp_path, resumed, root)
    assert summary.computed == sum(s not in done for s in shards)  # finished shards were not recomputed
    assert summary.rows == 12 and len(set(store.read_table(final).column("video_id").to_pylist())) == 12
    clean = _stage(tmp_path / "again", MeanColour(), root)
    a = store.read_table(final)
    b = store.read_table(output_paths(tmp_path / "again" / "features", "meancolour")[0])
    assert clean.computed == 12 and a.equals(b)
    assert store.completion(final) == {
        "failures": 0,
        "params_hash": store.read_meta(final)["params_hash"],
        "rows": 12,
        "shards": 3,
        "stage": "visual@meancolour",
    }


def test_rows_from_other_params_are_not_reused(tmp_path):
    root = write_decoded(tmp_path / "dec", videos(4), T, S, shards=2)
    with pytest.raises(KeyboardInterrupt):
        _stage(tmp_path, MeanColour(crash_after=1), root)
    other = MeanColour()
    other.cfg = {"weights": "something-else"}  # different params -> different params_hash
    assert _stage(tmp_path, other, root).computed == 4


def test_item_error_keeps_video_metadata():
    it = Item("x", 0, True, None, "broken")
    assert it.padded and it.frames is None


class LinearColour(Extractor):
    """Mean colour per video through a 3 -> 2 (1x1 conv) layer: weights that a state dict file can replace."""

    name = "linearcolour"

    def __init__(self, spec: str):
        super().__init__(cfg={"weights": spec}, num_frames=T)

    def build(self) -> nn.Module:
        return nn.Conv2d(3, 2, 1)

    def preprocess(self, frames: torch.Tensor) -> torch.Tensor:
        return frames.float().mean(dim=(1, 2, 3))[:, :, None, None]  # (B, 3, 1, 1): the engine takes images

    def head(self, model: nn.Module) -> nn.Module:
        return nn.Sequential(model, nn.Flatten(1))

    def aggregate(self, feats: torch.Tensor, batch: int) -> dict[str, torch.Tensor]:
        return {"lin": feats}

    def dims(self) -> dict[str, list[int]]:
        return {"lin": [2]}


def _weights_stage(tmp_path, root, spec: str, *, drop_sha: bool = False):
    ex = LinearColour(spec)
    loaded = weights.load(ex, spec)
    engine = Engine(ex, loaded.model, CPU)
    meta = store_meta(engine, loaded, decoded.read_meta(root))
    if drop_sha:  # a store written before weights_sha256 existed
        del meta["weights_sha256"]
    summary = extract_store(VisualWorker(engine, str(root), 2), tmp_path / "features", meta)
    final, _ = output_paths(tmp_path / "features", "linearcolour")
    table = store.read_table(final).sort_by("video_id")
    assert summary.failures == [] and table.num_rows == summary.total  # every video has features
    return summary, store.vectors(table.column("lin")), final


def test_replacing_the_weights_file_at_the_same_path_recomputes_every_video(tmp_path):
    root = write_decoded(tmp_path / "dec", videos(6), T, S, shards=3)
    path = tmp_path / "r.pth"
    torch.save({"weight": torch.ones(2, 3, 1, 1), "bias": torch.zeros(2)}, path)
    first, feats1, final = _weights_stage(tmp_path, root, str(path))
    assert first.computed == 6 and feats1.shape == (6, 2) and np.abs(feats1).min() > 1
    again, same, _ = _weights_stage(tmp_path, root, str(path))
    assert again.computed == 0 and again.rewritten == [] and np.array_equal(same, feats1)  # unchanged file: all kept

    torch.save({"weight": -2 * torch.ones(2, 3, 1, 1), "bias": torch.ones(2)}, path)  # new weights, same path
    new_sha = weights.read_state_dict(path, "k")[1]
    second, feats2, _ = _weights_stage(tmp_path, root, str(path))
    assert second.computed == 6 and second.rewritten == [0, 1, 2]
    np.testing.assert_allclose(feats2, -2 * feats1 + 1, rtol=1e-5)  # the new file's features, every video
    for shard in sorted(final.glob("shard-*.parquet")):
        meta = store.read_meta(shard)
        assert meta["weights_sha256"] == new_sha and new_sha in meta["weights_detail"]


def test_random_weights_stores_written_before_the_weights_hash_stay_reusable(tmp_path):
    root = write_decoded(tmp_path / "dec", videos(4), T, S, shards=2)
    old, feats_old, final = _weights_stage(tmp_path, root, "random", drop_sha=True)
    assert old.computed == 4 and "weights_sha256" not in store.read_meta(final)
    new, feats_new, _ = _weights_stage(tmp_path, root, "random")
    assert new.computed == 0 and np.array_equal(feats_new, feats_old)
    assert store.read_meta(final)["weights_sha256"] is None  # the seed is its identity


def test_build_worker_compiles_the_extractors_visual_compiled_lists_for_a_full_batch(tmp_path, monkeypatch):
    from pipeline.visual.worker import build_worker
    from tests.pipeline.visual.helpers import visual_config

    root = write_decoded(tmp_path / "dec", [("v0", random_frames(0, 2, 32), False)], 2, 32)
    seen = []
    monkeypatch.setattr(Engine, "compile", lambda self, example: seen.append((self.extractor.name, example.shape)))
    small = {"num_frames": 2, "keep_sequence": False}
    build_worker("resnet152", visual_config(precision="fp32", batch_size=3, resnet152=small), str(root))
    assert seen == []  # visual.compiled: [] (the default)
    cfg = visual_config(precision="fp32", batch_size=3, compiled=("resnet152",), resnet152=small)
    build_worker("resnet152", cfg, str(root))
    assert seen == [("resnet152", (3, 2, 32, 32, 3))]  # batch_size clips of the decoded store's frame shape

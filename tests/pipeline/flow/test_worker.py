"""The flow stage on a tiny decoded store, and the flow stream (i3d_flow) reading its output."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import torch

from pipeline.decode import decoded
from pipeline.flow.optical import dequantise
from pipeline.flow.worker import compute_store
from pipeline.visual.worker import build_worker, extract_store, store_meta
from tests.pipeline.flow.test_optical import config, translating
from tests.pipeline.visual.helpers import visual_config, write_decoded

T, S = 4, 64


def decoded_store(tmp_path):
    videos = [
        ("right", translating(T, S, 2, 0), False),
        ("down", translating(T, S, 0, 2), True),
        ("broken", b"\x00" * 10, False),  # a frames blob of the wrong size
    ]
    return write_decoded(tmp_path / "decoded", videos, T, S)


def test_flow_store_layout_values_failures_and_reruns(tmp_path):
    root = decoded_store(tmp_path)
    out = tmp_path / "flow"
    summary = compute_store(config(), root, out)
    assert summary.rows == 2 and [(f.video_id, f.reason) for f in summary.failures] == [("broken", "bad_frames")]
    meta = decoded.read_meta(out)
    assert meta["stage"] == "flow" and meta["dims"]["frames"] == [T - 1, S, S, 2] and meta["bound"] == 20.0
    index = decoded.read_index(out, expect={"stage": "flow"})
    assert sorted(index.column("video_id").to_pylist()) == ["down", "right"]
    reader = decoded.ShardReader(out)
    for vid, want in (("right", [2, 0]), ("down", [0, 2])):
        shard = index.filter(index.column("video_id").to_numpy(zero_copy_only=False) == vid).column("shard")[0].as_py()
        video = reader.read(shard, vid, audio=False)
        assert video.frames.shape == (T - 1, S, S, 2) and video.frames.dtype == np.uint8
        flow = dequantise(video.frames, 20.0)[:, 12:-12, 12:-12].reshape(-1, 2)
        np.testing.assert_allclose(np.median(flow, axis=0), want, atol=0.35)
    assert video.padded  # carried over from the decoded row
    assert pq.read_table(out / decoded.FAILURES_NAME).column("reason").to_pylist() == ["bad_frames"]
    assert compute_store(config(), root, out).computed == 0  # incremental: nothing new (failure kept)
    assert compute_store(config(bound=10.0), root, out).computed == 3  # other params: everything again


def test_flow_stream_extracts_from_the_flow_store_deterministically(tmp_path):
    root = decoded_store(tmp_path)
    compute_store(config(), root, tmp_path / "flow")
    cfg = visual_config(precision="fp32", batch_size=2, threads=1, i3d_flow={"num_frames": 3})
    out = {}
    for run in ("one", "two"):
        built = build_worker("i3d_flow", cfg, str(tmp_path / "flow"))
        assert built.worker.engine.extractor.num_frames == T - 1
        meta = store_meta(built.worker.engine, built.loaded, decoded.read_meta(tmp_path / "flow"))
        summary = extract_store(built.worker, tmp_path / run, meta)
        assert summary.rows == 2
        table = pq.read_table(tmp_path / run / "visual_i3d_flow.parquet").sort_by("video_id")
        out[run] = np.stack(table.column("i3d_flow_pool").to_numpy(zero_copy_only=False))
    assert out["one"].shape == (2, 2048) and np.isfinite(out["one"]).all()
    np.testing.assert_array_equal(out["one"], out["two"])
    assert np.linalg.norm(out["one"][0] - out["one"][1]) > 1e-3 * np.linalg.norm(out["one"][0])  # motions differ


def test_flow_stream_input_is_the_flow_rescaled_to_unit_range():
    from pipeline.visual import extractor as registry

    ex = registry.create("i3d_flow", visual_config(i3d_flow={"num_frames": 2}), 2)
    frames = np.zeros((1, 2, 8, 8, 2), np.uint8)
    frames[..., 0], frames[..., 1] = 255, 0  # +bound in x, -bound in y
    got = ex.preprocess(torch.from_numpy(frames))  # (1, 2, 2, 8, 8)
    assert got.shape == (1, 2, 2, 8, 8)
    assert torch.allclose(got[:, 0], torch.ones(1)) and torch.allclose(got[:, 1], -torch.ones(1))

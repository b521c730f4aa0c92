"""FRAME's clip level end to end on the sample generator: watch times -> ctr_data -> frame -> clip AUC."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pyarrow as pa
import pytest
import torch

from pipeline.ctr import clips
from pipeline.ctr.build import build_samples, write_built
from pipeline.ctr.experiment import load_dataset, run
from pipeline.datasets import SourceError
from pipeline.datasets.adapters.log import read_log_file
from pipeline.sample import clip_tints, plan_interactions, plan_videos, plan_watch, write_csv
from tests.models.test_ctr_models import CFG
from tests.pipeline.ctr.test_data import cfg as data_cfg

HEADER = ["user_id", "video_id", "timestamp", "label", "watch_time", "duration"]


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def sample_dataset(tmp_path, params, shuffle: bool):
    """The sample log (smaller) through ctr_data, with clip vectors that see each clip's tint as rendered
    with ``sample.clip_tint`` (a noisy one-hot, standing in for the visual features); ``shuffle``: each
    video's clip vectors permuted across its clips (the control: content no longer aligned to the grid)."""
    cfg = dataclasses.replace(params.sample, n_users=120, impressions_per_user=30)
    specs = plan_videos(cfg)
    write_csv(tmp_path / "log.csv", HEADER, plan_watch(cfg, specs, list(plan_interactions(cfg, specs))))
    rng = np.random.default_rng(0)
    tints = clip_tints(cfg)  # (videos, C)
    x = np.eye(2, dtype=np.float32)[tints] + rng.normal(0, 0.3, (*tints.shape, 2)).astype(np.float32)
    if shuffle:
        x = np.stack([v[rng.permutation(len(v))] for v in x])
    folder = tmp_path / "ctr"
    built = build_samples(read_log_file(tmp_path / "log.csv"), data_cfg(path=str(tmp_path / "log.csv")))
    write_built(built, folder, {})
    table = clips.clip_table([s.video_id for s in specs], x, np.ones(len(specs), bool))
    clips.write_clips(table, tmp_path / "clips_src.parquet", "log_data", (cfg.clips, 2), {})
    aligned = clips.align_to_codes(tmp_path / "clips_src.parquet", built.items)
    clips.write_clips(aligned, folder / clips.CLIPS, "ctr_data", (cfg.clips, 2), {})
    return load_dataset(folder), built.summary


def test_frame_learns_the_sample_clip_interest_and_a_shuffled_control_does_not(tmp_path, params):
    cfg = dataclasses.replace(CFG, model="frame", use_content=False, epochs=8, patience=8, lr=0.03, batch_size=64)
    aucs = {}
    for shuffle in (False, True):
        data, summary = sample_dataset(tmp_path / str(shuffle), params, shuffle)
        _, metrics, p = run(cfg, data)
        aucs[shuffle] = metrics["clip_auc"]
        assert metrics["clip_samples"] == data.tables["test"].num_rows  # the sample log has a watch time per row
        assert summary["watch_time_missing"] == 0 and summary["watch_time_clipped"] == 0
        assert metrics["auc"] is not None and len(p) == data.tables["test"].num_rows
        json.dumps(metrics)  # what ctr_train writes
    assert aucs[False] > 0.75, aucs  # the tint drives the hidden per-clip interest
    assert abs(aucs[True] - 0.5) < 0.1, aucs  # clips out of place: nothing to read


def test_watch_ratio_rules_are_counted(tmp_path):
    log = tmp_path / "log.csv"
    rows = [("u1", "a", 1, 1, 2.0, 4.0), ("u1", "b", 2, 0, "", 4.0), ("u2", "a", 3, 1, 9.0, 4.0)]
    write_csv(log, HEADER, rows + [(f"u{k}", "c", 10 + k, k % 2, 1.0, 4.0) for k in range(3, 12)])
    raw = read_log_file(log)
    built = build_samples(raw, data_cfg(path=str(log)))
    s = built.summary
    assert (s["watch_time_missing"], s["watch_time_clipped"]) == (1, 1)
    ratio = pa.concat_tables(built.splits.values()).column("watch_ratio").to_numpy(zero_copy_only=False)
    assert np.isnan(ratio).sum() == 1 and np.nanmax(ratio) == 1.0  # the replay read as watched to the end
    assert sorted(np.round(ratio[~np.isnan(ratio)], 2).tolist())[:2] == [0.25, 0.25]
    skip = clips.skipped_at(np.array([0.0, 0.24, 0.25, 0.99, 1.0, np.nan]), 4)
    assert skip.tolist() == [0, 0, 1, 3, 4, -1]
    labels, mask = clips.clip_labels(skip, 4)
    assert labels[2].tolist() == [1, 0, 0, 0] and mask[2].tolist() == [True, True, False, False]
    assert mask[4].all() and labels[4].all() and not mask[5].any()  # watched to the end; unknown


@pytest.mark.parametrize(
    ("cells", "message"),
    [
        ("u1,a,1,1,-2,4", "line 2 column 'watch_time': '-2' is negative"),
        ("u1,a,1,1,x,4", "line 2 column 'watch_time': 'x' is not a number"),
        ("u1,a,1,1,2,0", "line 2 column 'duration': '0' is not a positive length"),
        ("u1,a,1,1,2,", "line 2 column 'duration': None is not a positive length"),
    ],
)
def test_bad_watch_times_name_the_file_row_and_column(tmp_path, cells, message):
    log = tmp_path / "log.csv"
    log.write_text(",".join(HEADER) + "\n" + cells + "\n")
    with pytest.raises(SourceError, match=f"log.csv: {message}"):
        read_log_file(log)


def test_a_watch_time_needs_its_duration(tmp_path):
    log = tmp_path / "log.csv"
    log.write_text("user_id,video_id,timestamp,watch_time\nu1,a,1,2\n")
    with pytest.raises(SourceError, match="'watch_time' without 'duration'"):
        read_log_file(log)


def test_clip_grid_averages_the_frames_of_each_segment():
    frames = np.arange(8, dtype=np.float32).reshape(1, 8, 1)  # 8 frames evenly spread
    assert clips.clip_grid(frames, 4)[0, :, 0].tolist() == [0.5, 2.5, 4.5, 6.5]
    assert clips.clip_grid(frames[:, :2], 4)[0, :, 0].tolist() == [0, 0, 1, 1]  # fewer frames: nearest

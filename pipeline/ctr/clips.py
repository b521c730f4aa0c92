"""FRAME's clip level: the watch ratio of each interaction, per-clip visual vectors, clip labels.

A video is cut into ``C`` equal segments, its **clip grid** (FRAME's, relative to the video's length,
so every video has ``C`` clips). An interaction's ``watch_ratio`` (watch time / duration, in [0, 1], NaN
unknown) says how far the user got: clips ``k < floor(ratio * C)`` were watched through (positive
feedback), clip ``floor(ratio * C)`` is the one they left at (negative), later clips were never seen
(no label). Pure numpy; I/O only in ``write_clips`` / ``read_clips``.

Clip vectors come from a visual store's per-frame sequence (``visual.resnet152.keep_sequence``: ``F``
frames spread evenly over the video): frame ``j`` of ``F`` falls in clip ``floor(j * C / F)`` and a
clip's vector is the mean of its frames (a clip with no frame, ``F < C``, takes its nearest frame).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.core import store

CLIPS = "clips.parquet"  # in a log_data / dataset folder (by video_id) and in ctr_data's output (aligned)
COLUMN = "clips"  # (C * K) vector column, dims [C, K] in the metadata
UNKNOWN = -1  # a sample without watch feedback (no watch time, or a sampled negative)


def watch_ratio(inter: pa.Table, summary: dict[str, Any]) -> np.ndarray | None:
    """``(rows,)`` float32 watch time / duration clipped to [0, 1], NaN unknown; None without the columns.

    Counted in ``summary``: ``watch_time_missing`` (empty cells: clicks kept, no clip labels) and
    ``watch_time_clipped`` (longer than the video: a replay or a loop, read as watched to the end)."""
    if "watch_time" not in inter.column_names:
        return None
    watch = inter.column("watch_time").to_numpy(zero_copy_only=False).astype(np.float64)
    duration = inter.column("duration").to_numpy(zero_copy_only=False).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = watch / duration
    summary["watch_time_missing"] = int(np.isnan(ratio).sum())
    summary["watch_time_clipped"] = int((ratio > 1).sum())
    return np.minimum(ratio, 1.0).astype(np.float32)


def skipped_at(ratio: np.ndarray, n_clips: int) -> np.ndarray:
    """``(N,)`` int64: clips watched through, i.e. the index of the clip left at (``n_clips``: watched to
    the end; ``UNKNOWN`` for NaN)."""
    known = np.isfinite(ratio)
    out = np.full(ratio.shape, UNKNOWN, np.int64)
    out[known] = np.minimum(np.floor(ratio[known] * n_clips + 1e-6), n_clips).astype(np.int64)
    return out


def clip_labels(skip: np.ndarray, n_clips: int) -> tuple[np.ndarray, np.ndarray]:
    """``(N, C)`` labels (1 watched through, 0 the clip left at) and a mask of the labelled clips."""
    k = np.arange(n_clips)
    labels = (k[None, :] < skip[:, None]).astype(np.float32)
    mask = (skip[:, None] >= 0) & (k[None, :] <= skip[:, None])
    return labels, mask


def clip_grid(frames: np.ndarray, n_clips: int) -> np.ndarray:
    """``(N, F, D)`` per-frame vectors (evenly spread over each video) -> ``(N, C, D)`` per-clip means."""
    n, f, d = frames.shape
    owner = np.arange(f) * n_clips // f  # the clip each frame falls in
    out = np.zeros((n, n_clips, d), np.float32)
    for c in range(n_clips):
        mine = owner == c
        if mine.any():
            out[:, c] = frames[:, mine].mean(1)
        else:  # fewer frames than clips: the frame nearest the clip's centre
            out[:, c] = frames[:, min(int((c + 0.5) * f / n_clips), f - 1)]
    return out


def clip_table(video_ids: list[str], clips: np.ndarray, present: np.ndarray) -> pa.Table:
    """video_id, ``clips`` (flattened ``(C, K)``), ``clips_present``."""
    n, c, k = clips.shape
    return pa.table(
        {
            "video_id": pa.array(video_ids, pa.string()),
            COLUMN: store.vector_array(np.where(present[:, None, None], clips, 0.0).reshape(n, c * k)),
            f"{COLUMN}_present": pa.array(present),
        }
    )


def write_clips(table: pa.Table, path: str | Path, stage: str, shape: tuple[int, int], params: Any) -> None:
    store.write_table(table, path, store.make_meta(stage, params=params, dims={COLUMN: list(shape)}))


def read_clips(path: str | Path, video_ids: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """``(len(video_ids), C, K)`` clip vectors aligned to ``video_ids`` and their presence (absent: zeros)."""
    got = store.read_vectors(path, COLUMN, align_to=video_ids, mask=f"{COLUMN}_present")
    return got.x.astype(np.float32), got.present


def align_to_codes(path: str | Path, items: pa.Table) -> pa.Table:
    """ctr_data's copy of a dataset's ``clips.parquet``: one row per item code (``items``: item, video_id)."""
    ids = pc.cast(items.column("video_id"), pa.string()).to_pylist()
    x, present = read_clips(path, ids)
    return clip_table(ids, x, present)

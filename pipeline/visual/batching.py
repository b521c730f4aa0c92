"""Stream decoded videos through an ``Engine`` in bounded batches that span videos (and shards).

``read_shard`` turns one decoded shard into ``Item``s without copying frame bytes; a frames blob
that does not have the store's shape becomes an ``Item`` with an error instead of stopping the
run. ``extract`` groups items into batches of ``batch_size`` videos, prepares the next batch
(uint8 -> device -> model input) in a background thread while the current one runs, and yields
one ``Result`` per item in input order. A batch that fails is retried video by video, so one
bad video costs only itself; memory is bounded by ``batch_size`` and the two-batch look-ahead.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pipeline.decode.decoded import iter_shard
from pipeline.execution.pools import bounded_map
from pipeline.visual.inference import Engine

LOOKAHEAD = 2  # prepared batches in flight: enough to hide preparation, small enough to bound memory


@dataclass(frozen=True)
class Item:
    video_id: str
    shard: int
    padded: bool
    frames: np.ndarray | None  # (T, S, S, 3) uint8, None when the blob is unusable
    error: str | None = None  # why frames is None


@dataclass(frozen=True)
class Result:
    video_id: str
    shard: int
    padded: bool
    features: dict[str, np.ndarray] | None  # column -> (D,) float32
    reason: str | None = None  # failure reason code (pipeline.core.failures.REASONS) when features is None
    message: str | None = None


def read_shard(root: str | Path, shard: int, shape: Sequence[int]) -> Iterator[Item]:
    """Items of one decoded shard (``pipeline.decode.decoded.iter_shard``: zero-copy, bad blobs flagged)."""
    for video in iter_shard(root, shard, shape, 0, frames=True, audio=False):
        yield Item(video.video_id, shard, bool(video.padded), video.frames, video.error)


@dataclass
class _Prepared:
    items: list[Item]
    good: list[Item]
    x: torch.Tensor | None
    error: str | None


def _batches(items: Iterable[Item], size: int) -> Iterator[list[Item]]:
    batch: list[Item] = []
    for item in items:
        batch.append(item)
        if sum(it.error is None for it in batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def extract(engine: Engine, items: Iterable[Item], batch_size: int) -> Iterator[Result]:
    """One ``Result`` per item, in order; failures are results with a reason, never exceptions."""

    def prepare(batch: list[Item]) -> _Prepared:
        good = [it for it in batch if it.error is None]
        if not good:
            return _Prepared(batch, good, None, None)
        try:
            return _Prepared(batch, good, engine.prepare(np.stack([it.frames for it in good])), None)  # (B, T, H, W, C)
        except (RuntimeError, ValueError) as err:
            return _Prepared(batch, good, None, f"{type(err).__name__}: {err}")

    for prep in bounded_map(prepare, _batches(items, batch_size), workers=1, window=LOOKAHEAD):
        yield from _run(engine, prep)


def _run(engine: Engine, prep: _Prepared) -> Iterator[Result]:
    outs: list[dict[str, np.ndarray] | str] = []  # per good item: features or an error message
    if prep.good:
        if prep.x is not None:
            try:
                out = engine.run(prep.x, len(prep.good))  # {column: (B, D)}
                outs = [{k: v[i] for k, v in out.items()} for i in range(len(prep.good))]
            except RuntimeError as err:  # out of memory or a kernel error: retry one video at a time
                prep.error = f"{type(err).__name__}: {err}"
            prep.x = None
        if not outs:
            outs = [prep.error or "unknown error"] if len(prep.good) == 1 else [_one(engine, it) for it in prep.good]
    good = iter(outs)
    for it in prep.items:
        if it.error is not None:
            yield Result(it.video_id, it.shard, it.padded, None, "bad_frames", it.error)
            continue
        got = next(good)
        if isinstance(got, str):
            yield Result(it.video_id, it.shard, it.padded, None, "extract_error", got)
        elif not all(np.isfinite(v).all() for v in got.values()):
            yield Result(it.video_id, it.shard, it.padded, None, "extract_error", "non-finite features (NaN/inf)")
        else:
            yield Result(it.video_id, it.shard, it.padded, got)


def _one(engine: Engine, item: Item) -> dict[str, np.ndarray] | str:
    try:
        out = engine(item.frames[None])  # (1, T, H, W, C)
    except (RuntimeError, ValueError) as err:
        return f"{type(err).__name__}: {err}"
    return {k: v[0] for k, v in out.items()}

"""The flow stage's worker and store: decoded rows in, optical-flow rows out (``pipeline.flow.optical``).

Reads videos of the decoded store one at a time (each worker thread its own reader); writes the
flow store ``paths.flow`` in the decoded store's layout (``pipeline.decode.decoded``: shards,
``index.parquet`` written last, ``failures.parquet``), so every frame reader reads it: ``frames``
holds ``(T - 1, S, S, 2)`` uint8 flow quantised over ``[-bound, bound]``, and there is no audio.
Metadata: stage ``flow``, the method and its parameters, ``bound``, the decoded store's params hash.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pyarrow as pa

from pipeline.core import store
from pipeline.core.shards import ShardedStore, Summary
from pipeline.decode import decoded
from pipeline.execution import executors, runner
from pipeline.execution.job import ExecutorConfig, Job, failure_row
from pipeline.execution.pools import resolve_workers, threads
from pipeline.flow.config import FlowConfig
from pipeline.flow.optical import pair_flow, quantise, video_flow


def flow_params(cfg: FlowConfig) -> dict[str, Any]:
    """What changes the flow (goes into params and params_hash): not workers or the failure rate."""
    method = cfg.tvl1 if cfg.method == "tvl1" else cfg.farneback
    return {"method": cfg.method, "bound": cfg.bound, cfg.method: store.plain(method)}


def flow_meta(cfg: FlowConfig, decoded_meta: Mapping[str, Any]) -> dict[str, Any]:
    t, s = decoded_meta["dims"]["frames"][:2]
    return store.make_meta(
        "flow",
        params={**flow_params(cfg), "decoded_params_hash": decoded_meta["params_hash"]},
        shards=decoded_meta["shards"],
        dims={"frames": [t - 1, s, s, 2]},
        frame_layout="THWC",
        frame_dtype="uint8",
        flow_channels=["x", "y"],
        bound=cfg.bound,
        audio_rate=decoded_meta["audio_rate"],
        decoded_params_hash=decoded_meta["params_hash"],
    )


@dataclass
class FlowWorker:
    """The executor's worker: {video_id, fingerprint, shard} rows in, flow-store rows (or failures) out."""

    cfg: FlowConfig
    decoded_root: str
    _local: threading.local = field(default_factory=threading.local)

    def __post_init__(self) -> None:
        cv2.setNumThreads(1)  # one core per video: the stage parallelises over videos instead

    def _reader(self) -> decoded.ShardReader:
        if not hasattr(self._local, "reader"):  # a ShardReader caches one shard: one per thread
            self._local.reader = decoded.ShardReader(self.decoded_root)
            self._local.flow = pair_flow(self.cfg)  # a TV-L1 object is not safe to share between threads
        return self._local.reader

    def one(self, row: Mapping[str, Any]) -> dict[str, Any]:
        video = self._reader().read(row["shard"], row["video_id"], frames=True, audio=False)
        if video.frames is None:
            return failure_row(row["video_id"], row["fingerprint"], "bad_frames", video.error or "no frames")
        if len(video.frames) < 2:
            message = "one decoded frame: no pair to compute flow on (raise decode.num_frames)"
            return failure_row(row["video_id"], row["fingerprint"], "bad_frames", message)
        q = quantise(video_flow(video.frames, self._local.flow), self.cfg.bound)  # (T-1, S, S, 2) uint8
        return {
            "video_id": row["video_id"],
            "fingerprint": row["fingerprint"],
            "frames": np.ascontiguousarray(q).tobytes(),
            "frame_indices": list(range(len(q))),  # flow t: decoded frame t -> t + 1
            "n_unique_frames": len(q),
            "padded": bool(video.padded),
            "has_audio": False,
            "audio": b"",
            "audio_seconds": 0.0,
            "decode_errors": 0,
            "note": "",
        }

    def __call__(self, batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [self.one(row) for row in batch]


def flow_stage(cfg: FlowConfig, decoded_root: str | Path, out: str | Path) -> runner.PerVideoStage:
    """The per-video stage that brings the flow store ``out`` up to date with the decoded store."""
    root, out = str(Path(decoded_root).resolve()), Path(out)
    meta = flow_meta(cfg, decoded.read_meta(root))
    sharded = ShardedStore(
        out,
        int(meta["shards"]),
        decoded.SHARD_SCHEMA,
        meta,
        stage="flow",
        failures_path=out / decoded.FAILURES_NAME,
        encode=partial(pa.Table.from_pylist, schema=decoded.SHARD_SCHEMA),
        row_group=1,  # one video per row group: readers load one video at a time
        carry=(decoded.DECODE_ERRORS,),
    )
    workers = resolve_workers(cfg.workers)
    job = Job("flow", partial(FlowWorker, cfg, root), batch_size=1, num_cpus=1, concurrency=workers)
    return runner.PerVideoStage(
        "flow",
        "flow",
        sharded,
        job,
        partial(threads, job, workers=workers),
        cfg.max_failure_rate,
        to_worker=decoded.reference,
        source=lambda row: str(decoded.shard_path(root, row["shard"])),
        on_change=lambda plan: (out / decoded.INDEX_NAME).unlink(missing_ok=True),  # no index: readers stop
        on_complete=lambda: decoded.write_index(out, meta),
    )


def compute_store(
    cfg: FlowConfig, decoded_root: str | Path, out: str | Path, executor: ExecutorConfig = executors.LOCAL
) -> Summary:
    """Bring the flow store ``out`` up to date with every video of the decoded store."""
    stage = flow_stage(cfg, decoded_root, out)
    index = decoded.read_index(decoded_root).select(["video_id", "fingerprint", decoded.DECODE_ERRORS]).to_pylist()
    return runner.run(stage, index, executor)

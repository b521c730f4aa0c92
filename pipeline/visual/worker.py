"""Extract one visual store from a decoded store, incrementally (``pipeline.core.shards``).

Reads the decoded store (``pipeline.decode.decoded`` layout); updates ``<out_dir>/visual_<name>.parquet``,
a folder of ``shard-XXX.parquet`` (``video_id``, ``fingerprint``, the extractor's vector columns,
``padded``; the decoded store's shard count and assignment) and ``visual_<name>_failures.parquet``.
Only videos whose (video_id, fingerprint) and params are not in the store yet run through the
model; an interrupted run leaves its finished shards, and the rerun does only what is missing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from pipeline.core import store
from pipeline.core.shards import ShardedStore, Summary
from pipeline.decode import decoded
from pipeline.decode.decoded import DECODE_ERRORS
from pipeline.execution import executors, runner
from pipeline.execution.job import ExecutorConfig, Job, failure_row
from pipeline.visual import weights
from pipeline.visual.batching import Item, extract
from pipeline.visual.extractor import VisualConfig, create, output_paths
from pipeline.visual.inference import CalibrationSet, Engine, resolve_placement
from pipeline.visual.quantize import choose_calibration

log = logging.getLogger("visual")
ROW_GROUP = 256  # videos per Parquet row group of a feature shard


FLAGS = ("padded", "decode_errors")  # per-video columns after the vectors; decode_errors: null = unknown


def feature_schema(dims: Mapping[str, Sequence[int]]) -> pa.Schema:
    vecs = [(col, store.vector_type(int(np.prod(shape)))) for col, shape in dims.items()]
    flags = [("padded", pa.bool_()), (DECODE_ERRORS, pa.int32())]
    return pa.schema([("video_id", pa.string()), ("fingerprint", pa.string()), *vecs, *flags])


def encode(rows: list[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    cols: dict[str, Any] = {
        "video_id": pa.array([r["video_id"] for r in rows], pa.string()),
        "fingerprint": pa.array([r["fingerprint"] for r in rows], pa.string()),
    }
    for name in schema.names[2 : -len(FLAGS)]:
        cols[name] = store.vector_array(np.stack([r[name].reshape(-1) for r in rows]))  # (N, D)
    cols["padded"] = pa.array([r["padded"] for r in rows], pa.bool_())
    cols[DECODE_ERRORS] = pa.array([r.get(DECODE_ERRORS) for r in rows], pa.int32())
    return pa.table(cols, schema=schema)


def store_meta(engine: Engine, loaded: weights.WeightsInfo, decoded_meta: dict[str, Any]) -> dict[str, Any]:
    ex, rt = engine.extractor, engine.placement
    # precision changes the numbers, so it is part of params (and params_hash). The device and
    # threads are not stored: in an incremental store, shards may come from different machines.
    # weights_sha256 is in the reuse key: params hold the weights *path*, which stays the same
    # when the file at it is replaced.
    params = {**ex.output_params(), "precision": rt.precision}
    extra = {}
    if engine.calibration is not None:
        # the calibration clips set the int8 scales: other clips, other features (so in the reuse key)
        params["int8_calibration"] = list(engine.calibration.video_ids)
        extra["int8"] = engine.calibration.record()
    if engine.fallback is not None:
        extra["int8_fallback"] = engine.fallback  # int8 was asked for; the store holds fp32 (precision says so)
    # the kernels of the run that wrote it: not in the reuse key (the same features to float rounding)
    extra["graph"] = engine.graph
    return store.make_meta(
        "visual",
        params=params,
        extractor=ex.name,
        weights=loaded.weights,
        dims=ex.dims(),
        weights_detail=loaded.detail,
        weights_sha256=loaded.sha256,
        precision=rt.precision,
        decoded_params_hash=decoded_meta["params_hash"],
        shards=decoded_meta["shards"],
        **extra,
    )


@dataclass
class VisualWorker:
    """The executor's worker: {video_id, fingerprint, shard} rows in, feature rows (or failures) out.

    It reads the frames itself from the decoded store; ``stream`` is the local path (batches span
    calls' rows, with the runner's look-ahead), ``__call__`` the executor's batch interface.
    """

    engine: Engine
    decoded_root: str
    batch_size: int

    def __post_init__(self) -> None:
        self.reader = decoded.ShardReader(self.decoded_root)

    def _items(self, rows: Iterable[Mapping[str, Any]], fingerprints: dict[str, str]) -> Iterator[Item]:
        for row in rows:
            fingerprints[row["video_id"]] = row["fingerprint"]
            video = self.reader.read(row["shard"], row["video_id"], frames=True, audio=False)
            yield Item(video.video_id, row["shard"], bool(video.padded), video.frames, video.error)

    def stream(self, rows: Iterable[Mapping[str, Any]]) -> Iterator[dict[str, Any]]:
        fingerprints: dict[str, str] = {}
        for result in extract(self.engine, self._items(rows, fingerprints), self.batch_size):
            fp = fingerprints.pop(result.video_id)
            if result.features is None:
                yield failure_row(result.video_id, fp, result.reason, result.message)
            else:
                yield {"video_id": result.video_id, "fingerprint": fp, "padded": result.padded, **result.features}

    def __call__(self, batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return list(self.stream(batch))


@dataclass(frozen=True)
class Built:
    worker: VisualWorker
    loaded: weights.WeightsInfo  # what was loaded: random, a named source, a file (and its sha256)


def calibration_set(decoded_root: str, manifest: str | None, n: int) -> CalibrationSet:
    """``n`` decoded clips of the training split (``split`` of the ingest manifest) for int8 calibration.

    Unpadded, readable videos only; every video when the manifest marks none as train (said in the record).
    """
    # the flow store has the decoded layout under another stage name: read its index as it says it is
    index = decoded.read_index(decoded_root, expect={"stage": decoded.read_meta(decoded_root)["stage"]})
    usable = [r for r in index.select(["video_id", "shard", "padded"]).to_pylist() if not r["padded"]]
    splits: dict[str, str | None] = {}
    if manifest and Path(manifest).exists():
        table = store.read_table(manifest, expect={"stage": "ingest"})
        if "split" in table.column_names:
            splits = dict(zip(table.column("video_id").to_pylist(), table.column("split").to_pylist()))
    ids, split = choose_calibration([r["video_id"] for r in usable], [splits.get(r["video_id"]) for r in usable], n)
    shard_of = {r["video_id"]: r["shard"] for r in usable}
    reader = decoded.ShardReader(decoded_root)
    videos = [reader.read(shard_of[v], v, frames=True, audio=False) for v in ids]
    good = [v for v in videos if v.frames is not None]
    clips = np.stack([v.frames for v in good]) if good else np.zeros((0,), np.uint8)
    return CalibrationSet(tuple(v.video_id for v in good), clips, split)


def build_worker(name: str, cfg: VisualConfig, decoded_root: str, manifest: str | None = None) -> Built:
    """Extractor, weights and engine for ``visual.<name>``, once per worker (int8: calibrated here)."""
    placement = resolve_placement(cfg)
    frame_shape = decoded.read_meta(decoded_root)["dims"]["frames"]  # (T, H, W, C)
    extractor = create(name, cfg, int(frame_shape[0]))
    loaded = weights.load(extractor, extractor.cfg.weights, placement.device)
    info = weights.WeightsInfo(loaded.weights, loaded.detail, loaded.sha256)  # without the model
    calibration = (
        calibration_set(decoded_root, manifest, cfg.calibration_clips) if placement.precision == "int8" else None
    )
    engine = Engine(extractor, loaded.model, placement, calibration=calibration)
    if name in cfg.compiled:
        engine.compile(np.zeros((cfg.batch_size, *frame_shape), np.uint8))
    return Built(VisualWorker(engine, decoded_root, cfg.batch_size), info)


def make_worker(name: str, cfg: VisualConfig, decoded_root: str, manifest: str | None = None) -> VisualWorker:
    return build_worker(name, cfg, decoded_root, manifest).worker


def visual_stage(
    worker: VisualWorker,
    out_dir: str | Path,
    meta: dict[str, Any],
    *,
    job: Job | None = None,
    max_failure_rate: float = 1.0,
) -> runner.PerVideoStage:
    """The per-video stage that brings ``visual_<name>.parquet`` up to date with the decoded store."""
    name, root = worker.engine.extractor.name, worker.decoded_root
    final, failures_path = output_paths(out_dir, name)
    schema = feature_schema(worker.engine.extractor.dims())
    sharded = ShardedStore(
        final,
        int(decoded.read_meta(root)["shards"]),
        schema,
        meta,
        stage="visual",
        failures_path=failures_path,
        encode=partial(encode, schema=schema),
        row_group=ROW_GROUP,
        carry=(DECODE_ERRORS,),
    )
    return runner.PerVideoStage(
        f"visual@{name}",
        "visual",
        sharded,
        job or Job(f"visual@{name}", lambda: worker),
        worker.stream,
        max_failure_rate,
        to_worker=decoded.reference,
        source=lambda row: str(decoded.shard_path(root, row["shard"])),
    )


def extract_store(
    worker: VisualWorker,
    out_dir: str | Path,
    meta: dict[str, Any],
    *,
    job: Job | None = None,
    executor: ExecutorConfig = executors.LOCAL,
    max_failure_rate: float = 1.0,
) -> Summary:
    """Bring ``visual_<name>.parquet`` up to date with the decoded store; ``job`` runs on ``executor``."""
    stage = visual_stage(worker, out_dir, meta, job=job, max_failure_rate=max_failure_rate)
    source = worker.engine.extractor.source  # "decoded", or "flow": the flow store has the decoded layout
    index = decoded.read_index(worker.decoded_root, expect={"stage": "flow"} if source == "flow" else None)
    return runner.run(stage, index.select(["video_id", "fingerprint", DECODE_ERRORS]).to_pylist(), executor)

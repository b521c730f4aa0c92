"""Compute one joint store from its input visual stores, incrementally (the per-video stage runner).

Reads the decoded index (the videos wanted) and, shard by shard, the input columns of each
``<paths.visual_features>/visual_<extractor>.parquet`` (complete stores only); updates
``<paths.joint_features>/joint_<name>.parquet`` (``video_id``, ``fingerprint``, ``<name>``, ``padded``;
the decoded store's shards) and ``joint_<name>_failures.parquet``. A video that an input store lacks
(it failed there: see that store's failures table) or holds for another fingerprint (stale) is a
``missing_input`` row, retried on every run. Combining runs on batches of ``BATCH`` videos, so no
more than a batch's inputs and outputs are ever in memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import partial
from itertools import groupby
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from pipeline.core import store
from pipeline.core.shards import ShardedStore, shard_path
from pipeline.decode.decoded import DECODE_ERRORS
from pipeline.execution import runner
from pipeline.execution.job import Job, batched, failure_row
from pipeline.joint.feature import Joint, output_paths
from pipeline.visual import extractor as visual
from pipeline.visual.worker import encode, feature_schema

BATCH = 256  # videos per combine call


@dataclass(frozen=True)
class Source:
    """One input of a joint feature: a column of a complete visual store."""

    role: str
    extractor: str
    column: str
    path: str
    dim: int
    meta: Mapping[str, Any]


def sources(joint: Joint, visual_dir: str | Path) -> dict[str, Source]:
    """Each role's store, checked: it is the extractor's, it is complete, and it has the column."""
    out = {}
    for role, inp in joint.inputs().items():
        path = visual.output_paths(visual_dir, inp.extractor)[0]
        if not path.exists():
            raise store.StoreError(
                f"{path}: store not found; joint.{joint.name} reads its {inp.column}: run visual@{inp.extractor} first"
            )
        meta = store.read_meta(path)
        store.check_meta(meta, {"stage": "visual", "extractor": inp.extractor}, str(path))
        dims = meta.get("dims", {})
        if inp.column not in dims:
            raise store.StoreError(
                f"{path}: no column {inp.column} (joint.{joint.name}, {role}); it has {sorted(dims)}: "
                f"set visual.{inp.extractor}.probs: true and rerun it"
                if inp.column.endswith("_probs")
                else f"{path}: no column {inp.column} (joint.{joint.name}, {role}); it has {sorted(dims)}"
            )
        out[role] = Source(role, inp.extractor, inp.column, str(path), int(np.prod(dims[inp.column])), meta)
    return out


def joint_meta(joint: Joint, srcs: Mapping[str, Source], decoded_meta: Mapping[str, Any]) -> dict[str, Any]:
    # The inputs' params hashes and weight hashes are part of params: new input features recompute the store.
    inputs = {
        role: {
            "extractor": s.extractor,
            "column": s.column,
            "params_hash": s.meta["params_hash"],
            "weights_sha256": s.meta.get("weights_sha256"),
        }
        for role, s in srcs.items()
    }
    return store.make_meta(
        "joint",
        params={**joint.output_params(), "inputs": inputs},
        joint=joint.name,
        dims={joint.name: [joint.dim({r: s.dim for r, s in srcs.items()})]},
        decoded_params_hash=decoded_meta["params_hash"],
        shards=decoded_meta["shards"],
    )


@dataclass
class JointWorker:
    """{video_id, fingerprint, shard} rows in, joint rows (or ``missing_input`` failures) out."""

    joint: Joint
    sources: Mapping[str, Source]
    _cached: dict[str, tuple[int, dict[str, tuple[str, np.ndarray, bool]]]] = field(default_factory=dict)

    def _shard(self, role: str, shard: int) -> dict[str, tuple[str, np.ndarray, bool]]:
        """video_id -> (fingerprint, vector, padded) of one shard of one input store (one shard cached per role)."""
        if self._cached.get(role, (-1,))[0] != shard:
            src = self.sources[role]
            path = shard_path(src.path, shard)
            rows: dict[str, tuple[str, np.ndarray, bool]] = {}
            if path.is_file():
                t = pq.read_table(path, columns=["video_id", "fingerprint", src.column, "padded"])
                x = store.vectors(t.column(src.column)).reshape(t.num_rows, -1)
                for i, (vid, fp, pad) in enumerate(
                    zip(*(t.column(c).to_pylist() for c in ("video_id", "fingerprint", "padded")), strict=True)
                ):
                    rows[vid] = (fp, x[i], bool(pad))
            self._cached[role] = (shard, rows)
        return self._cached[role][1]

    def _lookup(self, row: Mapping[str, Any]) -> tuple[dict[str, np.ndarray], bool] | str:
        got, padded = {}, False
        for role, src in self.sources.items():
            hit = self._shard(role, row["shard"]).get(row["video_id"])
            if hit is None:
                return f"{src.path} has no row for it ({role}: {src.column}); see visual_{src.extractor}_failures"
            if hit[0] != row["fingerprint"]:
                return f"{src.path} holds it for another fingerprint ({role}: stale; rerun visual@{src.extractor})"
            got[role], padded = hit[1], padded or hit[2]
        return got, padded

    def stream(self, rows: Iterable[Mapping[str, Any]]) -> Iterator[dict[str, Any]]:
        for _, in_shard in groupby(rows, key=lambda r: r["shard"]):
            for batch in batched((dict(r) for r in in_shard), BATCH):
                found = [(row, self._lookup(row)) for row in batch]
                good = [(row, hit) for row, hit in found if not isinstance(hit, str)]
                if good:
                    x = {role: np.stack([hit[0][role] for _, hit in good]) for role in self.sources}
                    y = self.joint.combine(x)  # (b, dim)
                    done = {row["video_id"]: (y[i], hit[1]) for i, (row, hit) in enumerate(good)}
                for row, hit in found:
                    vid, fp = row["video_id"], row["fingerprint"]
                    if isinstance(hit, str):
                        yield failure_row(vid, fp, "missing_input", hit)
                    else:
                        vec, padded = done[vid]
                        yield {"video_id": vid, "fingerprint": fp, "padded": padded, self.joint.name: vec}

    def __call__(self, batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return list(self.stream(sorted(batch, key=lambda r: r["shard"])))


def joint_stage(
    worker: JointWorker,
    out_dir: str | Path,
    meta: dict[str, Any],
    *,
    job: Job | None = None,
    max_failure_rate: float = 1.0,
) -> runner.PerVideoStage:
    """The per-video stage that brings ``joint_<name>.parquet`` up to date with the decoded store."""
    name = worker.joint.name
    final, failures_path = output_paths(out_dir, name)
    schema = feature_schema(meta["dims"])
    sharded = ShardedStore(
        final,
        int(meta["shards"]),
        schema,
        meta,
        stage="joint",
        failures_path=failures_path,
        encode=partial(encode, schema=schema),
        carry=(DECODE_ERRORS,),
    )
    return runner.PerVideoStage(
        f"joint@{name}",
        "joint",
        sharded,
        job or Job(f"joint@{name}", lambda: worker, batch_size=BATCH),
        worker.stream,
        max_failure_rate,
        to_worker=lambda row: {k: row[k] for k in ("video_id", "fingerprint", "shard")},
        source=lambda row: ", ".join(s.path for s in worker.sources.values()),
    )

"""Resumable writing of one visual store: per-shard part files, combined into the final store.

While a run is going, results go to ``<features>/.visual_<name>.parts/shard-XXX.parquet`` (one
part per decoded shard, committed atomically when the shard is done, failures in a
``shard-XXX.failures.parquet`` sidecar written just before). A rerun skips every part whose
metadata matches the current params_hash and the shard's content key, so an interrupted run
resumes without recomputing finished shards. The final ``visual_<name>.parquet`` and its
failures table appear (atomically) only when every shard is done; the parts are then removed.
Partial outputs therefore never look complete.
"""
from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline import failures, store
from pipeline.visual.runner import Result

PART_KIND = "visual_part"


def feature_schema(dims: Mapping[str, Sequence[int]]) -> pa.Schema:
    vecs = [(col, store.vector_type(int(np.prod(shape)))) for col, shape in dims.items()]
    return pa.schema([("video_id", pa.string()), *vecs, ("padded", pa.bool_())])


def shard_keys(index: pa.Table, decoded_hash: str) -> dict[int, str]:
    """Shard -> key of its content (video ids + fingerprints + decode params): parts are reused only on a match."""
    rows = sorted(zip(index.column("shard").to_pylist(), index.column("video_id").to_pylist(),
                      index.column("fingerprint").to_pylist()))
    keys: dict[int, hashlib._Hash] = {}
    for shard, vid, fp in rows:
        keys.setdefault(shard, hashlib.sha256(decoded_hash.encode())).update(f"{vid}\0{fp}\n".encode())
    return {s: h.hexdigest()[:16] for s, h in keys.items()}


class ShardPart:
    """Collects one shard's results; ``close`` commits failures sidecar, then the features part."""

    def __init__(self, path: Path, fail_path: Path, schema: pa.Schema, meta: Mapping[str, Any], source: str):
        self.fail_path, self.meta, self.source = fail_path, dict(meta), source
        self.writer = store.StreamWriter(path, schema, meta)
        self.schema = schema
        self.failed: list[failures.Failure] = []
        self.rows = 0

    def add(self, results: Sequence[Result]) -> None:
        ok = [r for r in results if r.features is not None]
        self.failed += [failures.Failure(r.video_id, self.source, "visual", r.reason, r.message)
                        for r in results if r.features is None]
        if ok:
            cols: dict[str, Any] = {"video_id": pa.array([r.video_id for r in ok], pa.string())}
            for name in self.schema.names[1:-1]:
                cols[name] = store.vector_array(np.stack([r.features[name].reshape(-1) for r in ok]))  # (N, D)
            cols["padded"] = pa.array([r.padded for r in ok], pa.bool_())
            self.writer.write(pa.table(cols))
            self.rows += len(ok)

    def close(self) -> None:
        store.write_table(failures.to_table(self.failed), self.fail_path, self.meta | {"kind": "failures"})
        self.writer.close()

    def abort(self) -> None:
        self.writer.abort()


class Parts:
    def __init__(self, final: Path, meta: Mapping[str, Any], dims: Mapping[str, Sequence[int]]):
        self.final, self.meta, self.schema = Path(final), dict(meta), feature_schema(dims)
        self.dir = self.final.parent / f".{self.final.stem}.parts"

    def paths(self, shard: int) -> tuple[Path, Path]:
        return self.dir / f"shard-{shard:03d}.parquet", self.dir / f"shard-{shard:03d}.failures.parquet"

    def part_meta(self, shard: int, key: str) -> dict[str, Any]:
        return self.meta | {"kind": PART_KIND, "shard": shard, "shard_key": key}

    def complete(self, shard: int, key: str) -> bool:
        feat, fail = self.paths(shard)
        if not (feat.exists() and fail.exists()):
            return False
        meta = store.read_meta(feat)
        return meta.get("params_hash") == self.meta["params_hash"] and meta.get("shard_key") == key

    def open(self, shard: int, key: str, source: str) -> ShardPart:
        feat, fail = self.paths(shard)
        return ShardPart(feat, fail, self.schema, self.part_meta(shard, key), source)

    def combine(self, shards: Sequence[int], failures_path: Path) -> tuple[int, list[failures.Failure]]:
        """Stream every part into the final store (one part in memory at a time); write failures; drop parts."""
        failed: list[failures.Failure] = []
        with store.StreamWriter(self.final, self.schema, self.meta) as writer:
            for shard in shards:
                feat, fail = self.paths(shard)
                for batch in _row_groups(feat):
                    writer.write(batch)
                failed += [failures.Failure(**row) for row in pq.read_table(fail).to_pylist()]
            rows = writer.rows
        failures.write(failed, failures_path, "visual")
        shutil.rmtree(self.dir, ignore_errors=True)
        return rows, failed


def _row_groups(path: Path) -> Iterator[pa.Table]:
    pf = pq.ParquetFile(path)
    for group in range(pf.num_row_groups):
        yield pf.read_row_group(group)

"""Incremental, content-addressed sharded stores: compute only what is new, rewrite only what changed.

A store is a folder of ``shard-XXX.parquet`` files (every one present, empty ones too) plus a
failures table. A video's shard is ``shard_of(fingerprint, shards)``: its content decides, so
new videos touch only the shards they land in. The unit of work is ``(video_id, fingerprint)``
under the store's *reuse key* (``params_hash``, the input store's params hash and, for visual
stores, the weights file's sha256): for each
shard, rows still wanted with the same fingerprint and reuse key are kept as they are, new or
changed videos are computed, removed ones dropped. A shard file is rewritten (atomically, through
``store.StreamWriter``) only when its rows or metadata change, so untouched shards keep their
bytes and mtime and DVC re-hashes only the changed files. Failures of unchanged videos are kept
(not retried every run); a changed video or config retries them.

``plan`` decides; ``write`` consumes one result row per planned row, in any order (a local pool or
Ray), and commits each shard as soon as its last row arrives, its rows sorted by ``video_id`` in row
groups of ``row_group`` rows: a shard's bytes depend on its rows, not on the order they came in or
on which of them were kept from the previous file. Rows are planned shard by shard,
so a killed run leaves complete shards behind and the rerun computes only what is missing.
Callers hold ``store.locked(root)`` around both.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.core import failures, store

log = logging.getLogger(__name__)

Key = tuple[str, str]  # (video_id, fingerprint)
# Metadata that must match for a row (or a failure) to be reused. weights_sha256: a visual store's
# weights file content (params only name its path); absent (None) in other stores and for random or
# named weights, so such stores written before it existed stay reusable.
REUSE_KEYS = ("params_hash", "decoded_params_hash", "weights_sha256")
REMAP_BYTES = 64 << 20  # a shard writer's spill is read through a fresh memory map after this many bytes
# failure reasons retried every run: a killed worker says nothing about the video, and a joint feature's
# missing input may be there on the next run
TRANSIENT = {"worker_error", "missing_input"}


def shard_of(fingerprint: str, shards: int) -> int:
    return int(fingerprint[:8], 16) % shards


def shard_path(root: str | Path, shard: int) -> Path:
    return Path(root) / f"shard-{shard:03d}.parquet"


def reuse_key(meta: Mapping[str, Any]) -> tuple:
    return tuple(meta.get(k) for k in REUSE_KEYS)


@dataclass
class Plan:
    todo: list[dict[str, Any]]  # wanted rows to compute (each with "shard"), shard by shard
    keep: dict[int, set[Key]]  # per shard: rows copied from its current file
    dirty: set[int]  # shards whose file is (re)written
    failures: list[failures.Failure]  # kept failures of unchanged videos
    total: int  # wanted videos
    pending: dict[int, int] = field(default_factory=dict)  # per shard: results still to come

    @property
    def changed(self) -> bool:
        return bool(self.dirty)


@dataclass(frozen=True)
class Summary:
    rows: int  # rows in the store after the run
    computed: int  # videos computed now
    failures: list[failures.Failure]  # kept + new
    total: int
    rewritten: list[int]  # shards written this run
    seconds: float  # computing and writing (the stage's own start-up not included)


class ShardedStore:
    """One incremental store; ``encode(rows) -> pa.Table`` turns result rows into ``schema`` rows."""

    def __init__(
        self,
        root: str | Path,
        shards: int,
        schema: pa.Schema,
        meta: Mapping[str, Any],
        *,
        stage: str,
        failures_path: str | Path,
        encode: Callable[[list[dict]], pa.Table],
        row_group: int = 256,
        carry: tuple[str, ...] = (),
    ):
        # carry: columns of the wanted rows copied into every stored row (what the stage knows of a video
        # before computing it: decode's decode_errors flag, so every store can filter damaged clips)
        self.carry = carry
        self.root, self.shards, self.schema, self.stage = Path(root), shards, schema, stage
        self.meta = store.read_meta(store.with_meta(pa.schema([]), meta))  # as it reads back (JSON)
        self.failures_path, self.encode, self.row_group = Path(failures_path), encode, row_group

    def plan(self, wanted: Iterable[Mapping[str, Any]]) -> Plan:
        """What to compute and which shards to rewrite for the ``wanted`` rows (video_id, fingerprint, ...)."""
        if self.root.is_file():  # a single-file store of an older layout: replaced by a shard folder
            log.warning("%s is a single file (an older layout); rebuilding it as a folder of shards", self.root)
            self.root.unlink()
        self._clean_stale_temps()
        by_shard: dict[int, dict[str, dict]] = defaultdict(dict)
        for row in wanted:
            shard = shard_of(row["fingerprint"], self.shards)
            by_shard[shard][row["video_id"]] = dict(row) | {"shard": shard}
        old_failures = self._reusable_failures()
        plan = Plan([], {}, set(), [], sum(len(v) for v in by_shard.values()))
        for shard in range(self.shards):
            want = by_shard.get(shard, {})
            have, same_meta = self._existing(shard)
            plan.keep[shard] = {(v, fp) for v, fp in have if v in want and want[v]["fingerprint"] == fp}
            todo = []
            for vid in sorted(want):
                key = (vid, want[vid]["fingerprint"])
                if key in plan.keep[shard]:
                    continue
                if key in old_failures:
                    plan.failures.append(old_failures[key])
                else:
                    todo.append(want[vid])
            plan.todo += todo
            plan.pending[shard] = len(todo)
            if todo or plan.keep[shard] != have or not same_meta:
                plan.dirty.add(shard)
        for extra in store.shard_files(self.root)[self.shards :]:  # a smaller shard count than before
            extra.unlink()
            plan.dirty.add(-1)
        return plan

    def _existing(self, shard: int) -> tuple[set[Key], bool]:
        """(rows of the current file that may be reused, whether its metadata equals this run's)."""
        path = shard_path(self.root, shard)
        if not path.is_file():
            return set(), False
        try:
            meta = store.read_meta(path)
            if reuse_key(meta) != reuse_key(self.meta) or meta.get("shards", self.shards) != self.shards:
                return set(), False
            ids = pq.read_table(path, columns=["video_id", "fingerprint"])
            # a file of an older schema (a column added since, as decode_errors) is rewritten, its rows kept
            same_columns = pq.read_schema(path).names == self.schema.names
        except (store.StoreError, pa.ArrowInvalid, KeyError) as err:
            log.warning("%s: unreadable (%s); recomputing its videos", path, err)
            return set(), False
        keys = set(zip(ids.column("video_id").to_pylist(), ids.column("fingerprint").to_pylist()))
        return keys, meta == self.meta and same_columns

    def _reusable_failures(self) -> dict[Key, failures.Failure]:
        if not self.failures_path.is_file():
            return {}
        try:
            meta = store.read_meta(self.failures_path)
            rows = pq.read_table(self.failures_path).to_pylist()
        except (store.StoreError, pa.ArrowInvalid) as err:
            log.warning("%s: unreadable (%s); retrying its videos", self.failures_path, err)
            return {}
        if reuse_key(meta) != reuse_key(self.meta):
            return {}
        return {
            (r["video_id"], r["fingerprint"]): failures.Failure(**r)
            for r in rows
            if r.get("fingerprint") and r["reason"] not in TRANSIENT
        }

    def _clean_stale_temps(self) -> None:
        """Temp files of a killed run (we hold the lock, so no live writer owns them)."""
        for tmp in self.root.glob(".shard-*.tmp"):
            tmp.unlink(missing_ok=True)

    def write(self, plan: Plan, results: Iterable[Mapping[str, Any]], source: Mapping[str, str]) -> Summary:
        """Commit ``plan``: one result per ``plan.todo`` row (``"failure"`` rows become failures table rows).

        ``source`` maps video_id -> the input path named in failure rows. The failures table is
        written even when the run is interrupted, so finished work is never redone.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        if plan.changed:
            store.mark_incomplete(self.root)  # before any shard changes: a killed run leaves no record
        start = time.perf_counter()
        writers: dict[int, _ShardWriter] = {}
        failed, computed, rewritten = list(plan.failures), 0, []
        planned = {row["video_id"]: row for row in plan.todo}  # executor rows may lack the fingerprint
        try:
            for shard in sorted(s for s in plan.dirty if s >= 0 and plan.pending[s] == 0):
                self._open(shard, plan).close()  # only removals or a metadata change: no compute
                rewritten.append(shard)
            for row in results:
                computed += 1
                if row["video_id"] not in planned:
                    raise RuntimeError(f"{self.stage}: the executor returned {row['video_id']!r}, not asked for")
                wanted = planned.pop(row["video_id"])
                fingerprint = wanted["fingerprint"]
                shard = shard_of(fingerprint, self.shards)
                if shard not in writers:
                    writers[shard] = self._open(shard, plan)
                if "failure" in row:
                    failed.append(
                        failures.Failure(
                            row["video_id"],
                            source.get(row["video_id"], ""),
                            self.stage,
                            row["failure"]["reason"],
                            row["failure"]["message"],
                            fingerprint,
                        )
                    )
                else:
                    writers[shard].add(row | {"fingerprint": fingerprint} | {c: wanted.get(c) for c in self.carry})
                plan.pending[shard] -= 1
                if plan.pending[shard] == 0:
                    writers.pop(shard).close()
                    rewritten.append(shard)
            if any(plan.pending.values()):
                raise RuntimeError(f"{self.stage}: the executor returned too few rows: {dict(plan.pending)}")
        except BaseException:
            for writer in writers.values():
                writer.abort()  # an unfinished shard keeps its previous file
            raise
        finally:
            self._write_failures(failed)
        rows = sum(pq.ParquetFile(f).metadata.num_rows for f in store.shard_files(self.root))
        store.mark_complete(
            self.root,
            {
                "stage": store.stage_name(self.meta),
                "shards": self.shards,
                "rows": rows,
                "failures": len(failed),
                "params_hash": self.meta.get("params_hash"),
            },
        )
        return Summary(
            rows,
            computed,
            sorted(failed, key=lambda f: f.video_id),
            plan.total,
            sorted(rewritten),
            time.perf_counter() - start,
        )

    def _open(self, shard: int, plan: Plan) -> _ShardWriter:
        writer = _ShardWriter(shard_path(self.root, shard), self.schema, self.meta, self.encode, self.row_group)
        writer.copy(plan.keep[shard])
        return writer

    def _write_failures(self, failed: Sequence[failures.Failure]) -> None:
        table = failures.to_table(sorted(failed, key=lambda f: f.video_id))
        meta = store.make_meta(self.stage, kind="failures") | {k: self.meta.get(k) for k in REUSE_KEYS}
        store.write_if_changed(table, self.failures_path, meta)


class _ShardWriter:
    """A shard's new file: the kept rows of the old one and the new rows, in ``video_id`` order.

    Rows arrive in any order. On Ray they come in completion order, which differs from run to run.
    The file must not depend on that order: DVC hashes its bytes, and a local run, a Ray run and
    an incremental run of the same videos must record the same hash. So rows are not written as they
    arrive. They are spilled, one row group at a time, to an uncompressed Arrow IPC file next to the
    shard. ``close`` memory-maps that file and writes every row sorted by ``video_id``, in row groups
    of ``row_group`` rows. Memory stays at about one row group, because the OS pages the mapped
    file in and out. The bytes then depend only on the rows and the metadata. ``encode`` must
    encode each row independently of its neighbours in a batch.
    """

    def __init__(
        self,
        path: Path,
        schema: pa.Schema,
        meta: Mapping[str, Any],
        encode: Callable[[list[dict]], pa.Table],
        row_group: int,
    ):
        self.path, self.schema, self.encode, self.row_group = path, schema.remove_metadata(), encode, row_group
        self.old = path if path.is_file() else None
        self.writer = store.StreamWriter(path, schema, meta)
        self.spill_path = path.with_name(f".{path.stem}.spill.tmp")  # plan() removes it after a killed run
        self.spill_sink = pa.OSFile(str(self.spill_path), "wb")
        self.spill = pa.ipc.new_file(self.spill_sink, self.schema)
        self.spill_open = True
        self.buffer: list[dict] = []

    def copy(self, keep: set[Key]) -> None:
        if not keep or self.old is None:
            return
        wanted = pa.array([f"{v}\0{fp}" for v, fp in keep])
        pf = pq.ParquetFile(self.old)
        for group in range(pf.num_row_groups):  # one row group in memory at a time
            table = pf.read_row_group(group)
            keys = pa.array(
                [
                    f"{v}\0{fp}"
                    for v, fp in zip(table.column("video_id").to_pylist(), table.column("fingerprint").to_pylist())
                ]
            )
            mask = pc.is_in(keys, wanted)
            if pc.any(mask).as_py():
                self._spill(table.filter(mask))

    def add(self, row: Mapping[str, Any]) -> None:
        self.buffer.append(dict(row))
        if len(self.buffer) >= self.row_group:
            self.flush()

    def flush(self) -> None:
        if self.buffer:
            self._spill(self.encode(self.buffer))
            self.buffer = []

    def _spill(self, table: pa.Table) -> None:
        # rows kept from a file written before a column existed (decode_errors) get it as null: unknown
        for column in self.schema:
            if column.name not in table.column_names:
                table = table.append_column(column.name, pa.nulls(table.num_rows, column.type))
        self.spill.write_table(table.select(self.schema.names).cast(self.schema))

    def close(self) -> None:
        try:
            self.flush()
            self._close_spill()
            self._write_sorted()
        except BaseException:
            self.abort()
            raise
        self.spill_path.unlink()
        self.writer.close()

    def _write_sorted(self) -> None:
        with pa.memory_map(str(self.spill_path)) as source:
            reader = pa.ipc.open_file(source)
            order = sorted(
                (video_id, b, r)
                for b in range(reader.num_record_batches)
                for r, video_id in enumerate(reader.get_batch(b).column("video_id").to_pylist())
            )
        start = 0
        while start < len(order):
            # The mapped pages a process has touched count in its RSS until it unmaps them. Mapping
            # anew every REMAP_BYTES keeps the RSS near one row group, not the size of the shard.
            with pa.memory_map(str(self.spill_path)) as source:
                reader = pa.ipc.open_file(source)
                touched = 0
                while start < len(order) and touched < REMAP_BYTES:
                    rows = [reader.get_batch(b).slice(r, 1) for _, b, r in order[start : start + self.row_group]]
                    # one contiguous chunk per row group, as encode() returns it: the bytes of a direct write
                    table = pa.Table.from_batches(rows, self.schema).combine_chunks()
                    self.writer.write(table)
                    touched += table.nbytes
                    start += self.row_group

    def _close_spill(self) -> None:
        if self.spill_open:
            self.spill_open = False
            self.spill.close()
            self.spill_sink.close()

    def abort(self) -> None:
        self._close_spill()
        self.spill_path.unlink(missing_ok=True)
        self.writer.abort()

"""Incremental sharded stores (pipeline.core.shards) and reading shard folders (pipeline.core.store)."""

from __future__ import annotations

import hashlib
import random
import threading
import time
from functools import partial

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.core import store
from pipeline.core.shards import ShardedStore, shard_of, shard_path
from pipeline.execution.job import failure_row

SHARDS = 4
SCHEMA = pa.schema([("video_id", pa.string()), ("fingerprint", pa.string()), ("value", pa.float64())])


def fp(content: str) -> str:
    return hashlib.sha256(content.encode()).hexdigest()


def corpus(n: int, changed: dict[str, str] | None = None) -> list[dict]:
    """Wanted rows: video ``vNN`` has content ``cNN`` unless ``changed`` says otherwise."""
    changed = changed or {}
    return [{"video_id": f"v{i:02d}", "fingerprint": fp(changed.get(f"v{i:02d}", f"c{i:02d}"))} for i in range(n)]


def open_store(root, params=None) -> ShardedStore:
    meta = store.make_meta("toy", params=params or {"scale": 1})
    return ShardedStore(
        root / "toy.parquet",
        SHARDS,
        SCHEMA,
        meta,
        stage="decode",
        failures_path=root / "toy_failures.parquet",
        encode=partial(pa.Table.from_pylist, schema=SCHEMA),
        row_group=3,
    )


def compute(row: dict, fail: set[str] = frozenset(), crash_after: int | None = None, seen: list | None = None) -> dict:
    if seen is not None:
        seen.append(row["video_id"])
        if crash_after is not None and len(seen) > crash_after:
            raise KeyboardInterrupt  # a run killed mid-way
    if row["video_id"] in fail:
        return failure_row(row["video_id"], row["fingerprint"], "decode_error", "boom")
    return {"video_id": row["video_id"], "fingerprint": row["fingerprint"], "value": int(row["fingerprint"][:6], 16)}


def run(root, wanted, params=None, **kw) -> tuple:
    seen: list[str] = []
    sharded = open_store(root, params)
    with store.locked(sharded.root):
        plan = sharded.plan(wanted)
        summary = sharded.write(plan, (compute(r, seen=seen, **kw) for r in plan.todo), {})
    return summary, seen


def stamps(root) -> dict[int, tuple[int, int]]:
    return {
        s: (shard_path(root / "toy.parquet", s).stat().st_ino, shard_path(root / "toy.parquet", s).stat().st_mtime_ns)
        for s in range(SHARDS)
    }


def test_incremental_equals_from_scratch_and_touches_only_changed_shards(tmp_path):
    run(tmp_path / "inc", corpus(12), fail={"v03"})
    before = stamps(tmp_path / "inc")
    final = corpus(15, changed={"v04": "edited"})[:7] + corpus(15)[8:]  # +3 new, v04 changed, v07 removed
    summary, seen = run(tmp_path / "inc", final, fail={"v03"})
    assert sorted(seen) == ["v04", "v12", "v13", "v14"]  # v03's failure is kept, not retried
    touched = {shard_of(fp(c), SHARDS) for c in ("c04", "edited", "c07", "c12", "c13", "c14")}
    after = stamps(tmp_path / "inc")
    assert {s for s in range(SHARDS) if after[s] != before[s]} == touched
    scratch, _ = run(tmp_path / "scratch", final, fail={"v03"})
    a = store.read_table(tmp_path / "inc" / "toy.parquet", expect={"stage": "toy"})
    b = store.read_table(tmp_path / "scratch" / "toy.parquet")
    assert a.equals(b) and a.column("video_id").to_pylist() == sorted(
        r["video_id"] for r in final if r["video_id"] != "v03"
    )
    assert [f.video_id for f in summary.failures] == ["v03"] == [f.video_id for f in scratch.failures]
    assert (summary.rows, summary.total, summary.computed) == (13, 14, 4)
    # kept and new rows merged as a fresh run writes them: DVC records the same hashes either way
    assert shard_bytes(tmp_path / "inc") == shard_bytes(tmp_path / "scratch")


def shard_bytes(root) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in store.shard_files(root / "toy.parquet")}


def run_in_order(root, wanted, order) -> None:
    """A run whose results arrive in ``order(plan.todo)`` (Ray: completion order)."""
    sharded = open_store(root)
    with store.locked(sharded.root):
        plan = sharded.plan(wanted)
        sharded.write(plan, [compute(row, fail={"v05"}) for row in order(plan.todo)], {})


def test_shard_bytes_do_not_depend_on_the_order_rows_arrive_in(tmp_path):
    wanted = corpus(40)
    run_in_order(tmp_path / "planned", wanted, list)  # the local executors: plan order, video_id per shard
    run_in_order(tmp_path / "reversed", wanted, lambda todo: todo[::-1])
    run_in_order(tmp_path / "shuffled", wanted, lambda todo: random.Random(7).sample(todo, len(todo)))
    planned = shard_bytes(tmp_path / "planned")
    assert len(planned) == SHARDS
    assert shard_bytes(tmp_path / "reversed") == planned
    assert shard_bytes(tmp_path / "shuffled") == planned
    sizes = []
    for path in store.shard_files(tmp_path / "shuffled" / "toy.parquet"):
        pf = pq.ParquetFile(path)
        ids = pf.read().column("video_id").to_pylist()
        assert ids == sorted(ids) and "v05" not in ids  # a failed video is in the failures table only
        groups = [pf.metadata.row_group(i).num_rows for i in range(pf.num_row_groups)]
        assert groups == [3] * (len(ids) // 3) + ([len(ids) % 3] if len(ids) % 3 else [])  # row_group=3
        sizes.append(len(ids))
    assert sum(sizes) == 39
    assert not list((tmp_path / "shuffled" / "toy.parquet").glob(".*"))  # no spill or temp file left


def test_no_change_rerun_computes_and_writes_nothing(tmp_path):
    run(tmp_path, corpus(10), fail={"v01"})
    before = stamps(tmp_path) | {"f": (tmp_path / "toy_failures.parquet").stat().st_mtime_ns}
    summary, seen = run(tmp_path, corpus(10), fail={"v01"})
    assert seen == [] and summary.rewritten == []
    assert stamps(tmp_path) | {"f": (tmp_path / "toy_failures.parquet").stat().st_mtime_ns} == before


def test_changed_video_or_params_retry_failures_and_params_recompute_all(tmp_path):
    run(tmp_path, corpus(6), fail={"v01"})
    _, seen = run(tmp_path, corpus(6, changed={"v01": "fixed"}))
    assert seen == ["v01"]  # the failed video changed: retried
    _, seen = run(tmp_path, corpus(6, changed={"v01": "fixed"}), params={"scale": 2})
    assert sorted(seen) == [f"v{i:02d}" for i in range(6)]  # another params_hash: everything again
    assert store.read_meta(tmp_path / "toy.parquet")["params"] == {"scale": 2}


def test_killed_run_leaves_complete_shards_and_rerun_completes(tmp_path):
    wanted = corpus(16)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, wanted, crash_after=9)
    root = tmp_path / "toy.parquet"
    done = sorted(p.name for p in root.glob("shard-*.parquet"))
    assert 0 < len(done) < SHARDS and not list(root.glob(".*.tmp"))  # whole shards only, no temp left
    rows_done = sum(store.read_table(root / name).num_rows for name in done)
    summary, seen = run(tmp_path, wanted)
    assert len(seen) == 16 - rows_done  # only what the killed run had not committed
    ids = store.read_table(root).column("video_id").to_pylist()
    assert ids == sorted(r["video_id"] for r in wanted)  # no duplicate, none missing


def test_read_table_on_a_shard_folder_checks_metadata(tmp_path):
    run(tmp_path, corpus(8))
    root = tmp_path / "toy.parquet"
    table = store.read_table(root, columns=["video_id", "value"])
    assert table.column("video_id").to_pylist() == [f"v{i:02d}" for i in range(8)]
    other = store.make_meta("toy", params={"scale": 3})
    store.write_table(store.read_table(shard_path(root, 2)), shard_path(root, 2), other)
    with pytest.raises(store.StoreError, match="shard-002.parquet: metadata differs .*params"):
        store.read_table(root)
    (tmp_path / "empty.parquet").mkdir()
    with pytest.raises(store.StoreError, match="no shard"):
        store.read_table(tmp_path / "empty.parquet")


def test_single_file_store_of_the_old_layout_becomes_a_shard_folder(tmp_path):
    store.write_table(pa.table({"video_id": ["old"]}), tmp_path / "toy.parquet", store.make_meta("toy"))
    summary, seen = run(tmp_path, corpus(5))
    assert (tmp_path / "toy.parquet").is_dir() and len(seen) == 5 and summary.rows == 5


def test_store_lock_serialises_writers(tmp_path):
    events: list[str] = []
    inside = threading.Event()

    def first() -> None:
        with store.locked(tmp_path / "toy.parquet"):
            events.append("first in")
            inside.set()
            time.sleep(0.3)  # the second writer arrives meanwhile and must wait
            events.append("first out")

    thread = threading.Thread(target=first)
    thread.start()
    inside.wait()
    with store.locked(tmp_path / "toy.parquet"):
        events.append("second in")
    thread.join()
    assert events == ["first in", "first out", "second in"]
    assert (tmp_path / ".toy.parquet.lock").exists() and not (tmp_path / "toy.parquet").exists()


def test_executor_rows_without_fingerprint_and_worker_errors_are_retried(tmp_path):
    sharded = open_store(tmp_path)
    plan = sharded.plan(corpus(4))
    results = [{"video_id": "v00", "failure": {"reason": "worker_error", "message": "worker killed"}}]
    results += [
        {k: v for k, v in compute(r).items() if k != "fingerprint"} for r in plan.todo if r["video_id"] != "v00"
    ]
    summary = sharded.write(plan, sorted(results, key=lambda r: r["video_id"], reverse=True), {})
    assert [(f.video_id, f.reason, f.fingerprint) for f in summary.failures] == [("v00", "worker_error", fp("c00"))]
    assert store.read_table(tmp_path / "toy.parquet").column("fingerprint").to_pylist() == [
        fp(f"c0{i}") for i in (1, 2, 3)
    ]
    _, seen = run(tmp_path, corpus(4))
    assert seen == ["v00"]  # a killed worker says nothing about the video: retried next run


def test_carried_columns_reach_every_row_and_files_from_before_a_column_read_it_as_null(tmp_path):
    """Issue 26: decode's decode_errors flag is carried from the wanted rows into every store; shards
    written before the column existed are kept (nothing recomputed) with the flag null: unknown."""
    run(tmp_path, corpus(6))  # the old schema: no flag
    flagged = pa.schema([*SCHEMA, ("decode_errors", pa.int32())])
    sharded = ShardedStore(
        tmp_path / "toy.parquet",
        SHARDS,
        flagged,
        store.make_meta("toy", params={"scale": 1}),
        stage="decode",
        failures_path=tmp_path / "toy_failures.parquet",
        encode=partial(pa.Table.from_pylist, schema=flagged),
        row_group=3,
        carry=("decode_errors",),
    )
    wanted = [r | {"decode_errors": k} for k, r in enumerate(corpus(8))]  # v06, v07 are new
    with store.locked(sharded.root):
        plan = sharded.plan(wanted)
        assert sorted(r["video_id"] for r in plan.todo) == ["v06", "v07"]  # the old rows are reused
        sharded.write(plan, (compute(r) for r in plan.todo), {})
    got = {r["video_id"]: r["decode_errors"] for r in store.read_table(tmp_path / "toy.parquet").to_pylist()}
    assert got == {**{f"v{k:02d}": None for k in range(6)}, "v06": 6, "v07": 7}

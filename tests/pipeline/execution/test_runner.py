"""pipeline.execution.runner: the one per-video stage runner (plan -> run -> shards -> failures -> completion
-> rate check), with a toy worker on a toy store; the same stage on the local path and on the executor."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.core import failures, store
from pipeline.core.shards import ShardedStore
from pipeline.execution import executors, runner
from pipeline.execution.job import Job, failure_row

SCHEMA = pa.schema([("video_id", pa.string()), ("fingerprint", pa.string()), ("double", pa.int64())])


class Doubler:
    """Rows {video_id, fingerprint, value} -> {video_id, fingerprint, double}; value < 0 is a bad input."""

    calls = 0

    def __call__(self, batch):
        Doubler.calls += len(batch)
        return [
            failure_row(r["video_id"], r["fingerprint"], "extract_error", "negative value")
            if r["value"] < 0
            else {"video_id": r["video_id"], "fingerprint": r["fingerprint"], "double": 2 * r["value"]}
            for r in batch
        ]


def stage(tmp_path, *, max_rate=1.0, done=None, changed=None):
    sharded = ShardedStore(
        tmp_path / "toy.parquet",
        3,
        SCHEMA,
        store.make_meta("toy", params={"k": 1}),
        stage="toy",
        failures_path=tmp_path / "toy_failures.parquet",
        encode=lambda rows: pa.Table.from_pylist(rows, schema=SCHEMA),
    )
    job = Job("toy", Doubler, batch_size=2)
    return runner.PerVideoStage(
        "toy",
        "toy",
        sharded,
        job,
        lambda rows: iter(Doubler()(rows)),
        max_rate,
        source=lambda row: f"/videos/{row['video_id']}",
        on_change=changed,
        on_complete=done,
    )


def rows(values):
    return [{"video_id": f"v{i}", "fingerprint": f"{i:08x}", "value": v} for i, v in enumerate(values)]


@pytest.mark.parametrize("kind", ["local-fast-path", "local-executor"])
def test_runs_writes_shards_and_failures_then_completes(tmp_path, kind):
    events = []
    st = stage(tmp_path, done=lambda: events.append("complete"), changed=lambda plan: events.append("changed"))
    cfg = executors.LOCAL
    if kind == "local-executor":  # the same job through the executor interface (what Ray gets)
        st = runner.PerVideoStage(
            st.name,
            st.section,
            st.store,
            st.job,
            lambda todo: executors.run(st.job, todo, cfg),
            st.max_failure_rate,
            st.to_worker,
            st.source,
            st.on_change,
            st.on_complete,
        )
    summary = runner.run(st, rows([1, 2, -1, 4]), cfg)
    assert (summary.rows, summary.computed, summary.total) == (3, 4, 4)
    assert events == ["changed", "complete"]
    table = store.read_table(tmp_path / "toy.parquet")
    assert dict(zip(table.column("video_id").to_pylist(), table.column("double").to_pylist())) == {
        "v0": 2,
        "v1": 4,
        "v3": 8,
    }
    fails = pq.read_table(tmp_path / "toy_failures.parquet").to_pylist()
    assert [(f["video_id"], f["reason"], f["path"], f["stage"]) for f in fails] == [
        ("v2", "extract_error", "/videos/v2", "toy")
    ]

    Doubler.calls = 0  # a second run with the same inputs computes nothing and changes nothing
    again = runner.run(st, rows([1, 2, -1, 4]), cfg)
    assert (again.computed, Doubler.calls, again.rewritten) == (0, 0, [])
    assert events == ["changed", "complete", "complete"]


def test_rate_check_after_everything_is_written(tmp_path):
    with pytest.raises(failures.FailureRateExceeded, match=r"toy: 2/3 inputs failed .*toy.max_failure_rate"):
        runner.run(stage(tmp_path, max_rate=0.5), rows([-1, -2, 3]), executors.LOCAL)
    assert len(pq.read_table(tmp_path / "toy_failures.parquet")) == 2
    assert store.read_table(tmp_path / "toy.parquet").num_rows == 1

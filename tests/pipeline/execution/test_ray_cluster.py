"""The ray executor on a two-node cluster (``ray_cluster``): the pool spans the nodes, and a lost node costs no row.

A job of 1 CPU per actor gets one actor per CPU of the cluster (not the one actor of ``Job``'s old
default). When the worker node dies while a batch runs there, the rows it had not returned run again
on the head, each row still comes back exactly once, and with ``max_retries: 0`` the run fails with
one ``ExecutorError`` line instead of Ray's traceback.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from pathlib import Path

import pytest

from pipeline.execution import executors as executor
from pipeline.execution.job import ExecutorError, Job
from pipeline.params import ExecutorConfig

ray = pytest.importorskip("ray")

CLUSTER = ExecutorConfig(kind="ray", address="", num_cpus=0, num_gpus=0, actors=0, max_retries=3)
# one actor per node, whatever the pool sizing: the worker node's actor cannot move to the busy head
ONE_PER_NODE = ExecutorConfig(kind="ray", address="", num_cpus=0, num_gpus=0, actors=2, max_retries=3)


class WhereAmI:
    """Returns the node each row ran on; on the worker node it first leaves a ``busy`` file (then naps)."""

    def __init__(self, log_dir: str, worker_node: str) -> None:
        self.log_dir, self.worker_node = Path(log_dir), worker_node

    def __call__(self, batch: list[dict]) -> list[dict]:
        node = ray.get_runtime_context().get_node_id()
        if node == self.worker_node:
            (self.log_dir / "busy").touch()
        time.sleep(0.5)  # long enough for the test to kill the node while this batch runs
        return [{"video_id": row["video_id"], "node": node} for row in batch]


def rows(n: int) -> list[dict]:
    return [{"video_id": f"v{i:02d}"} for i in range(n)]


def once_each(out) -> dict[str, dict]:
    got: dict[str, dict] = {}
    for row in out:
        assert row["video_id"] not in got, f"{row['video_id']} came back twice"
        got[row["video_id"]] = row
    return got


def kill_when_busy(cluster, worker, marker: Path) -> threading.Thread:
    """Remove the worker node (raylet and workers, SIGKILL) as soon as it runs a batch."""

    def kill() -> None:
        deadline = time.monotonic() + 120
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        cluster.remove_node(worker, allow_graceful=False)

    thread = threading.Thread(target=kill)
    thread.start()
    return thread


# The node-killing tests first: the others then share one cluster (intact_ray_cluster), with the first test
# of tests/stages/test_ray_cluster.py too.
def test_lost_node_reruns_its_rows_on_the_nodes_left(ray_cluster, tmp_path, caplog):
    cluster, worker = ray_cluster
    job = Job("where", functools.partial(WhereAmI, str(tmp_path), worker.node_id))
    killer = kill_when_busy(cluster, worker, tmp_path / "busy")
    with caplog.at_level(logging.WARNING, logger="pipeline.execution.ray_executor"):
        out = once_each(executor.run(job, rows(12), ONE_PER_NODE))
    killer.join()
    assert sorted(out) == [row["video_id"] for row in rows(12)]  # complete, each row once
    assert "lost workers" in caplog.text  # the node's batch was re-run, not silently dropped
    assert any(row["node"] == cluster.head_node.node_id for row in out.values())


def test_lost_node_without_retries_fails_with_one_line(ray_cluster, tmp_path):
    cluster, worker = ray_cluster
    job = Job("where", functools.partial(WhereAmI, str(tmp_path), worker.node_id))
    killer = kill_when_busy(cluster, worker, tmp_path / "busy")
    no_retries = ExecutorConfig(kind="ray", address="", num_cpus=0, num_gpus=0, actors=2, max_retries=0)
    with pytest.raises(ExecutorError) as err:
        once_each(executor.run(job, rows(12), no_retries))
    killer.join()
    message = str(err.value)
    assert "\n" not in message and len(message) < 600, message
    assert message.startswith("where: the ray executor failed with ") and "of 12 videos not done" in message
    assert "Actor" in message  # what Ray said, in one line: ActorDiedError / ActorUnavailableError


def test_pool_is_sized_from_the_cluster_and_spans_both_nodes(intact_ray_cluster, tmp_path):
    cluster, worker = intact_ray_cluster
    job = Job("where", functools.partial(WhereAmI, str(tmp_path), worker.node_id))  # concurrency: auto
    # 16 rows of 0.5 s: work enough left for the worker node's actor even when it starts late (a loaded
    # machine starts it seconds after the head's)
    out = once_each(executor.run(job, rows(16), CLUSTER))
    assert sorted(out) == [row["video_id"] for row in rows(16)]
    assert {row["node"] for row in out.values()} == {cluster.head_node.node_id, worker.node_id}


def test_gpu_job_on_a_cluster_without_gpus_fails_at_once(intact_ray_cluster, tmp_path):
    _, worker = intact_ray_cluster
    job = Job("where", functools.partial(WhereAmI, str(tmp_path), worker.node_id), num_gpus=1)
    with pytest.raises(ExecutorError, match="needs 1 GPUs .* the cluster has 0"):
        list(executor.run(job, rows(2), CLUSTER))


class Threads:
    """Returns the CPUs the executor granted the actor (what ``threads: 0`` resolves to there)."""

    def __call__(self, batch: list[dict]) -> list[dict]:
        from pipeline.execution.pools import resolve_workers

        return [{"video_id": row["video_id"], "threads": resolve_workers(0)} for row in batch]


def test_one_thread_per_core_fits_nodes_smaller_than_the_driver(intact_ray_cluster, caplog):
    """Issue 26: ``visual.threads: 0`` asked each actor for the driver's core count (2 here), which no
    1-CPU node gives, so nothing started; a job that asks "one per core" now gets the largest node's."""
    wish = Job("threads", Threads, num_cpus=2, fit_cpus=True)
    with caplog.at_level(logging.INFO, logger="pipeline.execution.ray_executor"):
        out = once_each(executor.run(wish, rows(4), CLUSTER))
    assert sorted(out) == [row["video_id"] for row in rows(4)] and {r["threads"] for r in out.values()} == {1}
    assert any(
        "one thread per core = 1 CPUs per actor (the largest node has 1" in r.getMessage() for r in caplog.records
    )
    with pytest.raises(ExecutorError, match="each actor needs 2 CPUs and the largest node has 1"):
        list(executor.run(Job("threads", Threads, num_cpus=2), rows(2), CLUSTER))  # an explicit count is kept

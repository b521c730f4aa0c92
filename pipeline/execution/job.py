"""The per-video job: what a stage runs once per video, and the row contract every executor keeps.

A stage describes its per-video work as a ``Job``: a factory for a ``Worker`` (built once per
process or actor, so model weights load once) and how to batch and place it. Every row is a dict
with ``video_id`` (unique within one run); each input row yields exactly one output row. A row the
worker cannot process carries ``failure: {"reason", "message"}`` (``failure_row``); a worker that
raises does not stop the run: ``call_safely`` turns the rows of that call into ``worker_error``
failure rows (the batch is retried row by row first, so one bad video does not fail its neighbours).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any, Protocol

from pipeline.core.config import at_least
from registry import Registry

Row = dict[str, Any]


class Worker(Protocol):
    def __call__(self, batch: list[Row]) -> list[Row]: ...


def failure_row(video_id: str, fingerprint: str | None, reason: str, message: str) -> Row:
    """The output row of a video that failed (reason: a ``pipeline.core.failures.REASONS`` code)."""
    row: Row = {"video_id": video_id, "failure": {"reason": reason, "message": message}}
    if fingerprint is not None:
        row["fingerprint"] = fingerprint
    return row


@dataclass(frozen=True)
class Job:
    """Per-video work and how to batch and place it.

    ``make_worker`` must pickle (a module-level class or function, or a
    ``functools.partial`` of one): Ray ships it to every actor, which calls it once.
    ``prepare`` is an optional stateless CPU step run before the worker (on Ray: as
    tasks, so e.g. decoding scales on CPU workers while a GPU actor pool runs the
    model); rows it marks with ``failure`` skip the worker.
    """

    name: str
    make_worker: Callable[[], Worker]
    batch_size: int = 1
    num_cpus: float = 1.0
    # True: num_cpus is this machine's core count standing for "one thread per core" (a ``threads: 0``
    # param): an executor whose nodes are smaller gives each actor the CPUs the largest node has instead
    fit_cpus: bool = False
    num_gpus: float = 0.0
    # actors in the pool (ray): 0 = as many as the cluster's CPUs (GPUs) hold; ``executor.actors`` > 0 overrides it
    concurrency: int = 0
    prepare: Worker | None = None
    prepare_num_cpus: float = 1.0

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.concurrency < 0:
            raise ValueError(f"job {self.name!r}: batch_size must be >= 1 and concurrency >= 0")


class ExecutorError(RuntimeError):
    """An executor could not finish a job: its workers were lost beyond ``executor.max_retries``, or
    the cluster cannot run it. The message is one line, and the stages log it as their error (``run_stage``).
    Rows returned before the error are already committed, so a re-run computes only the rest."""


def call_safely(fn: Worker, batch: list[Row]) -> list[Row]:
    """``fn(batch)`` for the rows without a failure; an exception becomes failure rows, never a crash."""
    todo = [row for row in batch if "failure" not in row]
    done = [row for row in batch if "failure" in row]
    if not todo:
        return done
    try:
        out = fn(todo)
    except Exception as err:  # noqa: BLE001 -- any worker error must become a failures-table row
        if len(todo) == 1:
            return done + [failure_row(todo[0]["video_id"], None, "worker_error", f"{type(err).__name__}: {err}")]
        return done + [r for row in todo for r in call_safely(fn, [row])]  # isolate the culprit
    _check_one_per_row(todo, out)
    return done + list(out)


def _check_one_per_row(batch: list[Row], out: list[Row]) -> None:
    got = sorted(str(row.get("video_id")) for row in out)
    want = sorted(str(row["video_id"]) for row in batch)
    if got != want:  # a Worker bug, not bad input: fail loudly rather than lose or invent rows
        raise RuntimeError(
            f"worker returned video_ids {got[:5]}... for a batch of {want[:5]}... (one row per input row)"
        )


def batched(rows: Iterable[Row], size: int) -> Iterator[list[Row]]:
    it = iter(rows)
    while batch := list(islice(it, size)):
        yield batch


Executor = Callable[[Job, Iterable[Row], "ExecutorConfig"], Iterator[Row]]
# where a Job's rows run (executor.kind); the members live in pipeline.execution.executors
EXECUTORS: Registry[Executor] = Registry("executor", key="executor.kind", plugins="pipeline.execution.executors")


@dataclass(frozen=True)
class ExecutorConfig:
    """Where per-video work runs (``pipeline.execution.executors``); never changes outputs, so no stage lists it."""

    kind: str  # a name in pipeline.execution.job.EXECUTORS: local (in-process) | ray (Ray Data)
    address: str  # ray: cluster address; "" = $RAY_ADDRESS, else a local runtime on this machine
    num_cpus: int  # ray local runtime: CPUs it may use; 0 = all
    num_gpus: float  # ray: GPUs per inference actor (fractions share a GPU); 0 = CPU actors
    actors: int  # ray: actor pool size per job; 0 = as many as the cluster's CPUs (GPUs) hold
    max_retries: int  # ray: restarts of a killed worker, retries of its batch, re-runs after a lost node (-1 = forever)

    def __post_init__(self) -> None:
        at_least(self, 0, "num_cpus", "num_gpus", "actors", meaning="0 = auto")
        at_least(self, -1, "max_retries", meaning="-1 = unlimited")
        EXECUTORS.check(self.kind)

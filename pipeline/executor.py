"""Run per-video work (a ``Job``) in-process or on Ray Data, with one interface.

A stage describes its work as a ``Job``: a factory for a ``Worker`` (built once per
process or actor, so model weights load once) and how to batch and place it. ``run``
streams the job's output rows back to the caller, which writes them to its store;
it reads and writes no files itself. Backends register by name in ``BACKENDS``:
``local`` (in-process, the reference) and ``ray`` (``pipeline.executor_ray``, imported
only when used, so ``local`` never needs Ray installed).

Row contract: every row is a dict with ``video_id`` (unique within one ``run``); each
input row yields exactly one output row, in no guaranteed order. A row the worker
cannot process carries ``failure: {"reason", "message"}``; a worker that raises does
not stop the run: the rows of that call become ``worker_error`` failure rows (the
batch is retried row by row first, so one bad video does not fail its neighbours).
"""
from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any, Protocol

from pipeline.config import ConfigError
from pipeline.params import ExecutorConfig

Row = dict[str, Any]


class Worker(Protocol):
    def __call__(self, batch: list[Row]) -> list[Row]: ...


@dataclass(frozen=True)
class Job:
    """Per-video work and its placement.

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
    num_gpus: float = 0.0
    concurrency: int = 1  # actors in the pool (ray); ``ExecutorConfig.actors`` > 0 overrides it
    prepare: Worker | None = None
    prepare_num_cpus: float = 1.0

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.concurrency < 1:
            raise ValueError(f"job {self.name!r}: batch_size and concurrency must be >= 1")


Backend = Callable[[Job, Iterable[Row], ExecutorConfig], Iterator[Row]]


def run(job: Job, rows: Iterable[Row], cfg: ExecutorConfig) -> Iterator[Row]:
    """Stream one output row per input row (order not guaranteed) from ``cfg.kind``'s backend."""
    return backend(cfg.kind)(job, rows, cfg)


def backend(kind: str) -> Backend:
    if kind not in BACKENDS:
        raise ConfigError(f"params key 'executor.kind' must be one of {', '.join(sorted(BACKENDS))}, got {kind!r}")
    module_name, attr = BACKENDS[kind].split(":")
    return getattr(importlib.import_module(module_name), attr)


def run_local(job: Job, rows: Iterable[Row], cfg: ExecutorConfig) -> Iterator[Row]:
    """The reference backend: one worker in this process, batches in input order."""
    worker = job.make_worker()
    for batch in batched(rows, job.batch_size):
        if job.prepare is not None:
            batch = call_safely(job.prepare, batch)
        yield from call_safely(worker, batch)


# "module:function" so that a backend's heavy imports (Ray) happen only when it is chosen
BACKENDS: dict[str, str] = {
    "local": "pipeline.executor:run_local",
    "ray": "pipeline.executor_ray:run_ray",
}


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
            return done + [failure_row(todo[0], err)]
        return done + [r for row in todo for r in call_safely(fn, [row])]  # isolate the culprit
    _check_one_per_row(todo, out)
    return done + list(out)


def failure_row(row: Row, err: BaseException) -> Row:
    return {"video_id": row["video_id"], "failure": {"reason": "worker_error", "message": f"{type(err).__name__}: {err}"}}


def _check_one_per_row(batch: list[Row], out: list[Row]) -> None:
    got = sorted(str(row.get("video_id")) for row in out)
    want = sorted(str(row["video_id"]) for row in batch)
    if got != want:  # a Worker bug, not bad input: fail loudly rather than lose or invent rows
        raise RuntimeError(f"worker returned video_ids {got[:5]}... for a batch of {want[:5]}... (one row per input row)")


def batched(rows: Iterable[Row], size: int) -> Iterator[list[Row]]:
    it = iter(rows)
    while batch := list(islice(it, size)):
        yield batch

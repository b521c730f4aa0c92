"""STUB of the executor seam (the Ray helper's branch owns this file; the lead reconciles).

``run(job, rows, cfg)`` builds ``job.make_worker()`` once and feeds it batches of
``job.batch_size`` rows, yielding one output row per input row (order not guaranteed).
Only ``kind: local`` runs here, serially; ``kind: ray`` lives on the ``ray`` branch.
"""
from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from pipeline.config import ConfigError
from pipeline.params import ExecutorConfig


class Worker(Protocol):
    def __call__(self, batch: list[dict[str, Any]]) -> list[dict[str, Any]]: ...


@dataclass(frozen=True)
class Job:
    name: str
    make_worker: Callable[[], Worker]  # picklable; called once per worker
    batch_size: int = 1
    num_cpus: float = 1.0
    num_gpus: float = 0.0
    concurrency: int = 1


def run(job: Job, rows: Iterable[dict[str, Any]], cfg: ExecutorConfig) -> Iterator[dict[str, Any]]:
    if cfg.kind != "local":  # the ray branch registers backends by name
        raise ConfigError(f"executor.kind={cfg.kind!r} is not available in this build (only local)")
    worker = job.make_worker()
    it = iter(rows)
    while batch := list(itertools.islice(it, job.batch_size)):
        yield from worker(batch)

"""Executors: where a ``Job``'s rows run, registered by name (``executor.kind``).

``run`` streams the job's output rows back to the caller, which writes them to its store; an
executor reads and writes no files itself. ``local`` (in this process, the reference) and ``ray``
(``pipeline.execution.ray_executor``, imported only when chosen, so ``local`` never needs Ray).
Output order is not guaranteed: the stage runner writes each shard in ``video_id`` order.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from pipeline.execution.job import EXECUTORS, ExecutorConfig, Job, Row, batched, call_safely


def run(job: Job, rows: Iterable[Row], cfg: ExecutorConfig) -> Iterator[Row]:
    """Stream one output row per input row (order not guaranteed) from ``cfg.kind``'s executor."""
    return EXECUTORS.get(cfg.kind)(job, rows, cfg)


@EXECUTORS.register("local")
def run_local(job: Job, rows: Iterable[Row], cfg: ExecutorConfig) -> Iterator[Row]:
    """The reference executor: one worker in this process, batches in input order."""
    worker = job.make_worker()
    for batch in batched(rows, job.batch_size):
        if job.prepare is not None:
            batch = call_safely(job.prepare, batch)
        yield from call_safely(worker, batch)


@EXECUTORS.register("ray")
def run_ray(job: Job, rows: Iterable[Row], cfg: ExecutorConfig) -> Iterator[Row]:
    """Ray Data (``pip install .[ray]``); imported here, on use, so ``local`` never needs Ray."""
    from pipeline.execution import ray_executor

    return ray_executor.run_ray(job, rows, cfg)


LOCAL = ExecutorConfig(
    kind="local", address="", num_cpus=0, num_gpus=0.0, actors=0, max_retries=0
)  # for library callers

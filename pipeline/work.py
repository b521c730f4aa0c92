"""Run a stage's per-video ``Job``: the local fast paths, or ``pipeline.executor`` (Ray).

Every stage's per-video work is a worker object (built once per worker: weights loaded,
librosa warmed up) called on batches of small input rows (references, not frames), returning
one output row per input row; a failure is ``failure_row(...)``. With ``executor.kind: local``
the same workers run here with each stage's speed trick (``threads``: decode waits on ffmpeg;
``processes``: audio's GIL-bound loops in a fork-server pool; a streaming worker for visual's
batching and look-ahead); any other kind goes through ``pipeline.executor.run``.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from pipeline import executor
from pipeline.executor import Job, Worker
from pipeline.params import ExecutorConfig
from pipeline.runtime import bounded_map, bounded_process_map

Row = dict[str, Any]
_WORKER: Worker | None = None  # this process's worker in a local process pool


def failure_row(video_id: str, fingerprint: str, reason: str, message: str) -> Row:
    """The output row of a video that failed (reason: a ``pipeline.failures.REASONS`` code)."""
    return {"video_id": video_id, "fingerprint": fingerprint, "failure": {"reason": reason, "message": message}}


def run(job: Job, rows: list[Row], cfg: ExecutorConfig, local: Callable[[Iterable[Row]], Iterator[Row]]) -> Iterator[Row]:
    """``local(rows)`` for ``executor.kind: local``, else the configured executor; no workers for no rows."""
    if not rows:
        return iter(())
    return local(rows) if cfg.kind == "local" else executor.run(job, rows, cfg)


def threads(job: Job, rows: Iterable[Row], workers: int) -> Iterator[Row]:
    """One worker shared by ``workers`` threads, one row per call, results in input order."""
    worker = job.make_worker()
    return bounded_map(lambda row: worker([row])[0], rows, workers)


def _init(make_worker: Callable[[], Worker]) -> None:
    global _WORKER
    _WORKER = make_worker()


def _call(row: Row) -> Row:
    assert _WORKER is not None, "worker process not initialised"
    return _WORKER([row])[0]


def processes(job: Job, rows: Iterable[Row], workers: int, preload: tuple[str, ...] = ()) -> Iterator[Row]:
    """A worker per process (built once by the pool initializer), one row per call, in input order."""
    return bounded_process_map(_call, rows, workers, initializer=_init, initargs=(job.make_worker,), preload=preload)

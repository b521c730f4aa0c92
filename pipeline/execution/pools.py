"""The local executor's pools: worker counts, bounded parallel maps, and a ``Job`` on threads or processes.

With ``executor.kind: local`` each per-video stage keeps its speed trick: ``threads`` (decode waits
on ffmpeg subprocesses), ``processes`` (audio's GIL-bound loops in a fork-server pool), or the
worker's own streaming path (visual's batching with look-ahead).
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from typing import Any, TypeVar

from pipeline.core import lifetime
from pipeline.execution.job import Job, Worker

POOL_SERVER = "pipeline.execution.pool_server"
T = TypeVar("T")
R = TypeVar("R")


CPUS_ENV = "PIPELINE_CPUS"  # the CPUs an executor granted this process (a Ray actor's num_cpus)


def resolve_workers(workers: int) -> int:
    """0 means one per CPU this process may use: ``$PIPELINE_CPUS`` when an executor set it, else its CPU affinity.

    A Ray node runs one actor per CPU it grants. Each actor's worker must then use its own share, not
    every core of the node: that many threads per actor, times one actor per core, would oversubscribe.
    """
    if workers > 0:
        return workers
    if os.environ.get(CPUS_ENV):
        return max(1, int(os.environ[CPUS_ENV]))
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def bounded_map(fn: Callable[[T], R], items: Iterable[T], workers: int, window: int | None = None) -> Iterator[R]:
    """Ordered ``map`` over a thread pool with at most ``window`` results in flight.

    Unlike ``Executor.map``, which submits everything at once, a slow item can hold back
    at most ``window`` finished results, so memory stays bounded on any corpus size.
    Threads suit the work here: it waits on ffmpeg subprocesses or on numpy/torch kernels.
    """
    with ThreadPoolExecutor(max_workers=workers) as pool:
        yield from _windowed(pool, fn, items, window or 2 * workers)


def _windowed(pool: Executor, fn: Callable[[T], R], items: Iterable[T], window: int) -> Iterator[R]:
    pending: deque[Future[R]] = deque()
    for item in items:
        pending.append(pool.submit(fn, item))
        if len(pending) >= window:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def bounded_process_map(
    fn: Callable[[T], R],
    items: Iterable[T],
    workers: int,
    *,
    initializer: Callable[..., object] | None = None,
    initargs: tuple = (),
    preload: tuple[str, ...] = (),
    window: int | None = None,
) -> Iterator[R]:
    """``bounded_map`` over worker processes, for work that holds the GIL (pure-Python loops).

    ``initializer(*initargs)`` runs once per worker (e.g. a numba warm-up), never per item.
    Workers fork from a single-threaded fork server (spawn where there is none), so no lock
    held by one of this process's threads is inherited; the server imports the ``preload``
    modules once and every worker starts with them (the server lives as long as this process,
    so the first call's ``preload`` is the one that counts). ``fn``, items and results must pickle.
    ``workers == 1`` runs in this process.

    The server and the workers die with this process, even on SIGKILL (``pool_server``, Linux).
    Consume the results from a thread that outlives the pool, such as the stage's main thread: the
    server is tied to the thread that started it.
    """
    if workers == 1:
        if initializer is not None:
            initializer(*initargs)
        yield from map(fn, items)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        # only takes effect before the server starts; pool_server first, so even a slow preload dies with us
        context.set_forkserver_preload([POOL_SERVER, *preload])
        os.environ[lifetime.PARENT_ENV] = str(os.getpid())  # the server's expected parent (read by POOL_SERVER)
    else:
        context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        workers, mp_context=context, initializer=_start_worker, initargs=(initializer, *initargs)
    ) as pool:
        yield from _windowed(pool, fn, items, window or 2 * workers)


def _start_worker(initializer: Callable[..., object] | None, *initargs: object) -> None:
    # A forked worker is already tied to the fork server. A spawned one (no fork server) is this
    # process's child and is tied here.
    lifetime.die_with_parent()
    if initializer is not None:
        initializer(*initargs)


Row = dict[str, Any]
_WORKER: Worker | None = None  # this process's worker in a local process pool


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

"""The ``ray`` executor backend: a ``Job`` as a Ray Data pipeline (needs ``pip install .[ray]``).

rows -> ``from_items`` -> [``prepare`` as CPU tasks] -> worker in an actor pool
(``make_worker`` runs once per actor: weights load once; ``num_gpus`` makes it a GPU
pool) -> streamed back to the driver. Reads and writes no files: workers open whatever
paths the rows name, so those must be visible at the same path on every node.

The driver materialises the input rows (``from_items``): pass light rows (ids, paths) and
let ``prepare`` or the worker load heavy data (frames) where it runs.

Rows travel as one pickled blob per row (plus ``video_id``) rather than as Ray's
columns: Arrow would unify heterogeneous rows (an ok row and a failure row become one
struct type, adding ``failure: None`` keys) and reshape numpy arrays, so pickling is
what makes arrays, bytes, nested dicts and None round-trip exactly.
"""

from __future__ import annotations

import logging
import os
import pickle
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

import pyarrow as pa
import ray

from pipeline.core.params import ExecutorConfig
from pipeline.execution.job import Job, Row, Worker, call_safely

log = logging.getLogger(__name__)


def run_ray(job: Job, rows: Iterable[Row], cfg: ExecutorConfig) -> Iterator[Row]:
    """Yield each input row's output row once, in completion order."""
    with ray_session(cfg):
        ds = ray.data.from_items([_pack(row) for row in rows])
        _quiet_retry_kwargs_warning()
        if job.prepare is not None:
            ds = ds.map_batches(
                _prepare_batch,
                fn_args=(job.prepare,),
                batch_format="pyarrow",
                batch_size=job.batch_size,
                num_cpus=job.prepare_num_cpus,
                max_retries=cfg.max_retries,
            )
        # a per-job subclass names the operator in Ray's logs and dashboard: MapBatches(Worker_<job>)
        actor_cls = type(f"Worker_{job.name}", (RayWorker,), {"make_worker": staticmethod(job.make_worker)})
        ds = ds.map_batches(
            actor_cls,
            batch_format="pyarrow",
            batch_size=job.batch_size,
            compute=ray.data.ActorPoolStrategy(size=_pool_size(job, cfg)),
            num_cpus=job.num_cpus,
            num_gpus=job.num_gpus,
            # a killed actor is restarted and its in-flight batch re-run (Ray Data's default is forever)
            max_restarts=cfg.max_retries,
            max_task_retries=cfg.max_retries,
        )
        # A re-run batch could in principle be reported twice; the caller must never see a row twice.
        seen: set[str] = set()
        for record in ds.iter_rows():
            if record["video_id"] in seen:
                log.warning("%s: dropped a repeated output row for %s (retried batch)", job.name, record["video_id"])
                continue
            seen.add(record["video_id"])
            yield pickle.loads(record["row"])


def _quiet_retry_kwargs_warning() -> None:
    # Ray 2.60 deprecates **ray_remote_args but has no named max_restarts/max_task_retries/max_retries yet;
    # revisit when bumping the pin (2.64 removes them; the defaults would then be unlimited retries).
    warnings.filterwarnings("ignore", message="`ray_remote_args` is deprecated", category=DeprecationWarning)


def _pool_size(job: Job, cfg: ExecutorConfig) -> int:
    """Actors for the job, leaving CPU for one ``prepare`` task: a CPU pool holding every CPU deadlocks it."""
    size = cfg.actors or job.concurrency
    if job.prepare is None or job.num_gpus > 0 or job.num_cpus <= 0:
        return size
    fits = int((ray.cluster_resources().get("CPU", 0) - job.prepare_num_cpus) // job.num_cpus)
    if fits < size:
        log.warning(
            "%s: %d actors of %g CPUs would leave none for prepare; using %d",
            job.name,
            size,
            job.num_cpus,
            max(1, fits),
        )
    return max(1, min(size, fits))


@contextmanager
def ray_session(cfg: ExecutorConfig) -> Iterator[None]:
    """Connect to ``cfg.address`` / $RAY_ADDRESS or start a local Ray runtime; stop only what we started.

    Wrap several ``run`` calls in one ``ray_session`` to pay the local Ray start-up once.
    """
    if ray.is_initialized():
        yield
        return
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    address = cfg.address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, logging_level=logging.WARNING)
    else:
        # address="local": a new runtime here, never one that `ray start` left running on this machine
        # (plain ray.init() would join it, against "no address: a local runtime")
        ray.init(address="local", num_cpus=cfg.num_cpus or None, include_dashboard=False, logging_level=logging.WARNING)
    quiet()
    try:
        yield
    finally:
        ray.shutdown()


def quiet() -> None:
    """The stages show their own per-video progress and log; Ray Data's bars and INFO lines would interleave."""
    ray.data.DataContext.get_current().enable_progress_bars = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)


class RayWorker:
    """Ray Data callable class: one ``Worker`` per actor, fed pickled rows (subclassed per job)."""

    make_worker: Callable[[], Worker]

    def __init__(self) -> None:
        self.worker = self.make_worker()

    def __call__(self, batch: pa.Table) -> pa.Table:
        return _to_table(call_safely(self.worker, _rows(batch)))


def _prepare_batch(batch: pa.Table, prepare: Worker) -> pa.Table:
    return _to_table(call_safely(prepare, _rows(batch)))


def _pack(row: Row) -> dict[str, object]:
    return {"video_id": str(row["video_id"]), "row": pickle.dumps(row, protocol=5)}


def _rows(batch: pa.Table) -> list[Row]:
    return [pickle.loads(blob) for blob in batch.column("row").to_pylist()]


def _to_table(rows: list[Row]) -> pa.Table:
    packed = [_pack(row) for row in rows]
    return pa.table(
        {
            "video_id": pa.array([p["video_id"] for p in packed], pa.string()),
            "row": pa.array([p["row"] for p in packed], pa.large_binary()),  # large: a batch of frames passes 2 GiB
        }
    )

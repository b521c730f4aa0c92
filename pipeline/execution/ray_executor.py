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

import dataclasses
import logging
import math
import os
import pickle
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

import pyarrow as pa
import ray
from ray.data.context import DEFAULT_WAIT_FOR_MIN_ACTORS_S

from pipeline.execution.job import ExecutorConfig, ExecutorError, Job, Row, Worker, call_safely
from pipeline.execution.pools import CPUS_ENV

log = logging.getLogger(__name__)
NODE_LOSS_WAIT_S = 60.0  # after losing workers: how long to wait for Ray to declare their node dead
RERUN_START_S = 600  # how long a re-run waits for its actors to start


def run_ray(job: Job, rows: Iterable[Row], cfg: ExecutorConfig) -> Iterator[Row]:
    """Yield each input row's output row once, in completion order.

    A lost worker (its process killed, its node gone) fails the pipeline. The rows not returned yet
    then run again in a new pipeline on the nodes left, at most ``cfg.max_retries`` times (-1: no
    limit). Ray does not restart actors itself here. After a node dies, Ray would restart the
    node's actors on the nodes left once it declared the node dead, and those restarts, owned by the
    failed pipeline, would hold the CPUs (GPUs) that the re-run needs. Any other Ray failure, or a
    loss beyond ``max_retries``, raises ``ExecutorError`` with one line.
    """
    todo = {str(row["video_id"]): row for row in rows}
    total, seen, reruns = len(todo), set(), 0
    with ray_session(cfg):
        while todo:
            nodes = _alive_nodes()
            largest = max((n["Resources"].get("CPU", 0) for n in ray.nodes() if n["Alive"]), default=0)
            fitted = fit_to_nodes(job, largest)
            records = iter(_pipeline(fitted, list(todo.values()), cfg, rerun=reruns > 0).iter_rows())
            try:
                for record in records:
                    video_id = record["video_id"]
                    if video_id in seen:  # the caller must never see a row twice
                        log.warning("%s: dropped a repeated output row for %s (retried batch)", job.name, video_id)
                        continue
                    seen.add(video_id)
                    todo.pop(video_id, None)
                    yield pickle.loads(record["row"])
                return  # every row returned (the runner checks that none is missing)
            except ray.exceptions.RayError as err:
                reruns += 1
                if not _lost_workers(err) or 0 <= cfg.max_retries < reruns:
                    raise ExecutorError(
                        f"{job.name}: the ray executor failed with {len(todo)} of {total} videos not done "
                        f"(re-runs: {reruns - 1} of executor.max_retries {cfg.max_retries}): {_one_line(err)}"
                    ) from err
                lost = _wait_for_node_loss(nodes) if _unreachable(err) else nodes - _alive_nodes()
                log.warning(
                    "%s: lost workers (%s%s); running the %d videos not done yet on the nodes left (re-run %d)",
                    job.name,
                    type(err).__name__,
                    f", {len(lost)} of {len(nodes)} nodes dead" if lost else "",
                    len(todo),
                    reruns,
                )
            finally:
                # shut this pipeline down now (its actors release their CPUs and GPUs), not when it is collected
                close = getattr(records, "close", None)
                if close is not None:
                    close()
                if todo:
                    _stop_actors(job)


def _stop_actors(job: Job) -> None:
    """Kill the actors of this job's failed pipeline that are still alive.

    Ray Data lets go of a failed pipeline's actors but does not kill them. An actor lives on while
    anything in this process still refers to a block it produced (for lineage reconstruction), and
    it holds the CPUs (GPUs) the re-run needs. A re-run's actor then waited forever behind it on a
    one-CPU node. Ray has no public call that lists a job's actors without the dashboard, so this
    reads the GCS table that Ray's own debugging helper (``ray._private.state.actors``) reads.
    """
    try:
        from ray._private import state

        job_id = ray.JobID.from_hex(ray.get_runtime_context().get_job_id())
        core_worker = ray._private.worker.global_worker.core_worker
        for actor_id, info in state.actors(job_id=job_id).items():
            if info["State"] != "DEAD" and f"(MapBatches({_actor_class_name(job)}))" in info["ActorClassName"]:
                core_worker.kill_actor(ray.ActorID.from_hex(actor_id), True)
    except Exception as err:  # noqa: BLE001 -- Ray internals: if they moved, say so, and the re-run waits at most RERUN_START_S
        log.warning("%s: could not stop the failed pipeline's actors: %s", job.name, err)


def _actor_class_name(job: Job) -> str:
    return f"Worker_{job.name}"


def _alive_nodes() -> set[str]:
    return {node["NodeID"] for node in ray.nodes() if node["Alive"]}


def _unreachable(err: BaseException) -> bool:
    """Ray could not reach the worker, so its node may be dying. (A dead process is simply dead.)"""
    return not isinstance(err, (ray.exceptions.ActorDiedError, ray.exceptions.WorkerCrashedError))


def _wait_for_node_loss(nodes: set[str]) -> set[str]:
    """The ``nodes`` Ray has declared dead, after waiting up to ``NODE_LOSS_WAIT_S`` for it to notice.

    Ray needs several missed health checks (10-30 s) to declare a killed node dead. Until then it
    counts the node's resources and places new actors there, so a re-run started earlier could wait
    on actors that never start. If no node dies within the limit, the re-run starts anyway.
    """
    deadline = time.monotonic() + NODE_LOSS_WAIT_S
    while not (lost := nodes - _alive_nodes()) and time.monotonic() < deadline:
        time.sleep(0.5)
    return lost


def fit_to_nodes(job: Job, largest: float) -> Job:
    """``job`` with its actors' CPUs capped at ``largest`` (the largest alive node's CPUs) when it asks for
    one per core (``Job.fit_cpus``): "0 = one per core" then means the cores of the node an actor runs
    on, not the driver's, so a cluster of smaller nodes can place actors (issue 26). Said in the log."""
    if not job.fit_cpus or job.num_gpus > 0 or largest <= 0 or job.num_cpus <= largest:
        return job
    log.info(
        "%s: one thread per core = %g CPUs per actor (the largest node has %g; this machine %g)",
        job.name,
        largest,
        largest,
        job.num_cpus,
    )
    return dataclasses.replace(job, num_cpus=largest)


def _pipeline(job: Job, rows: list[Row], cfg: ExecutorConfig, rerun: bool) -> ray.data.Dataset:
    context = ray.data.DataContext.get_current()
    # A re-run must not wait forever for actors that cannot start (e.g. behind a failed pipeline's
    # actor that could not be stopped): its start times out, and that fails the stage in one line.
    # A first run waits as long as Ray Data's default, since a busy cluster frees its CPUs eventually.
    context.wait_for_min_actors_s = RERUN_START_S if rerun else DEFAULT_WAIT_FOR_MIN_ACTORS_S
    ds = ray.data.from_items([_pack(row) for row in rows])
    _quiet_retry_kwargs_warning()
    if job.prepare is not None:
        ds = ds.map_batches(
            _prepare_batch,
            fn_args=(job.prepare,),
            batch_format="pyarrow",
            batch_size=job.batch_size,
            num_cpus=job.prepare_num_cpus,
            max_retries=cfg.max_retries,  # stateless tasks: Ray re-runs them on any node
        )
    size = _pool_size(job, cfg, batches=-(-len(rows) // job.batch_size))
    # a per-job subclass names the operator in Ray's logs and dashboard: MapBatches(Worker_<job>)
    actor_cls = type(_actor_class_name(job), (RayWorker,), {"make_worker": staticmethod(job.make_worker)})
    return ds.map_batches(
        actor_cls,
        batch_format="pyarrow",
        batch_size=job.batch_size,
        # A re-run waits for one actor, then grows to ``size`` as far as the nodes left allow: a pool
        # of executor.actors may no longer fit the cluster.
        compute=ray.data.ActorPoolStrategy(min_size=1, max_size=size)
        if rerun
        else ray.data.ActorPoolStrategy(size=size),
        num_cpus=job.num_cpus,
        num_gpus=job.num_gpus,
        # no restarts (Ray Data's default is forever): run_ray re-runs what a lost actor had not returned
        max_restarts=0,
        max_task_retries=0,
    )


# Lost capacity, which a re-run on the nodes left can make up for. Anything else (a worker that
# cannot even start, a bug) would fail the same way again.
_LOST = (
    ray.exceptions.RayActorError,  # ActorDiedError, ActorUnavailableError
    ray.exceptions.WorkerCrashedError,
    ray.exceptions.NodeDiedError,
    ray.exceptions.ObjectLostError,  # the node holding a batch's result or input died
    ray.exceptions.OutOfMemoryError,
)


def _lost_workers(err: BaseException) -> bool:
    for cause in (err, getattr(err, "cause", None), err.__cause__):  # RayTaskError wraps the real error
        if isinstance(cause, ray.exceptions.RayActorError) and cause.actor_init_failed:
            return False  # make_worker raised: it would raise again
        if isinstance(cause, _LOST):
            return True
    return False


def _one_line(err: BaseException) -> str:
    """``Type: message`` of the error (its last line: Ray puts the traceback of the real error first)."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    text = lines[-1] if lines else ""
    text = text if len(text) <= 300 else text[:297] + "..."
    return f"{type(err).__name__}: {text}" if not text.startswith(type(err).__name__) else text


def _quiet_retry_kwargs_warning() -> None:
    # Ray 2.60 deprecates **ray_remote_args but has no named max_restarts/max_task_retries/max_retries yet;
    # revisit when bumping the pin (2.64 removes them; the defaults would then be unlimited retries).
    warnings.filterwarnings("ignore", message="`ray_remote_args` is deprecated", category=DeprecationWarning)


def _pool_size(job: Job, cfg: ExecutorConfig, batches: int) -> int:
    """Actors for the job: ``executor.actors``, else the job's ``concurrency``, else as many as the
    cluster holds (its GPUs / ``num_gpus``, or CPUs / ``num_cpus``). Never more than there are
    batches (each actor builds its worker and loads its weights), and a CPU pool leaves CPU for one
    ``prepare`` task (a pool holding every CPU deadlocks it)."""
    resources = ray.cluster_resources()
    if job.num_gpus > 0 and resources.get("GPU", 0) < job.num_gpus:
        raise ExecutorError(
            f"{job.name}: each actor needs {job.num_gpus:g} GPUs (executor.num_gpus) and the cluster has "
            f"{resources.get('GPU', 0):g}; set executor.num_gpus: 0 to run on CPUs"
        )
    largest = max((n["Resources"].get("CPU", 0) for n in ray.nodes() if n["Alive"]), default=0)
    if job.num_cpus > largest:
        raise ExecutorError(
            f"{job.name}: each actor needs {job.num_cpus:g} CPUs and the largest node has {largest:g}: "
            "Ray could never place one"
        )
    if cfg.actors or job.concurrency:
        size, why = cfg.actors or job.concurrency, "executor.actors" if cfg.actors else "the job's concurrency"
    elif job.num_gpus > 0:
        size, why = int(resources["GPU"] // job.num_gpus), f"{resources['GPU']:g} GPUs / {job.num_gpus:g}"
    else:
        cpus = resources.get("CPU", 0)
        size, why = int(cpus // job.num_cpus if job.num_cpus > 0 else cpus), f"{cpus:g} CPUs / {job.num_cpus:g}"
    size = max(1, min(size, batches))
    if job.prepare is not None and job.num_gpus == 0 and job.num_cpus > 0:
        fits = max(1, int((resources.get("CPU", 0) - job.prepare_num_cpus) // job.num_cpus))
        if fits < size:
            log.warning(
                "%s: %d actors of %g CPUs would leave none for prepare; using %d", job.name, size, job.num_cpus, fits
            )
            size = fits
    log.info("%s: %d actors (%s, %d batches)", job.name, size, why, batches)
    return size


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
        try:
            ray.init(address=address, logging_level=logging.WARNING)
        except (ConnectionError, ray.exceptions.RayError) as err:  # no cluster there, a wrong token: one line
            raise ExecutorError(f"ray: cannot join the cluster at {address!r}: {_one_line(err)}") from err
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
    """The stages show their own per-video progress and log; Ray Data's bars and INFO lines would interleave.

    Ray Data's console also drops tracebacks: a failed run ends in one ``ExecutorError`` line from the
    stage, and Ray Data's log file (``<session>/logs/ray-data/ray-data.log``) keeps the full story.
    """
    ray.data.DataContext.get_current().enable_progress_bars = False
    logger = logging.getLogger("ray.data")
    logger.setLevel(logging.WARNING)
    for handler in logger.handlers:
        if isinstance(handler, logging.StreamHandler) and not isinstance(handler.formatter, _NoTraceback):
            handler.setFormatter(_NoTraceback(handler.formatter._fmt if handler.formatter else None))


class _NoTraceback(logging.Formatter):
    """The message line only: without the record's traceback, and without the one another handler cached."""

    def format(self, record: logging.LogRecord) -> str:
        saved = record.exc_info, record.exc_text, record.stack_info
        record.exc_info = record.exc_text = record.stack_info = None
        try:
            return super().format(record)
        finally:
            record.exc_info, record.exc_text, record.stack_info = saved


class RayWorker:
    """Ray Data callable class: one ``Worker`` per actor, fed pickled rows (subclassed per job)."""

    make_worker: Callable[[], Worker]

    def __init__(self) -> None:
        # threads: 0 in the worker's config then means this actor's CPUs, not all of the node's
        cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 0)
        os.environ[CPUS_ENV] = str(max(1, math.ceil(cpus)))
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

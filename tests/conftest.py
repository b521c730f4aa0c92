from __future__ import annotations

import contextlib
import logging
import os
import shutil
from pathlib import Path

# `make test` runs two xdist workers on two cores: one thread per test, and per stage a test starts
# (subprocesses inherit this). "0 = one per core" would give each of them every core: 2 x 2 threads
# on 2 cores, whose OpenMP spin-waits burned half the suite's CPU time. Set before torch is imported.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("PIPELINE_CPUS", "1")  # pipeline.execution.pools.resolve_workers(0)

import pytest  # noqa: E402

from pipeline.params import Params, load_params
from tests.media_fixtures import REAL_CLIPS, real_clips

ROOT = Path(__file__).resolve().parents[1]


def pytest_configure(config: pytest.Config) -> None:
    if shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None:
        raise pytest.UsageError("ffmpeg/ffprobe not on PATH: run `make test` (it installs them) or install FFmpeg")


@pytest.fixture(scope="session")
def params() -> Params:
    return load_params(ROOT / "params.yaml")


@pytest.fixture(scope="session")
def clips() -> list[Path]:
    found = real_clips()
    if not found:
        pytest.skip(f"real clips not found at {REAL_CLIPS} (they live in ../shared/data/videos)")
    return found


@pytest.fixture(scope="session")
def real_decoded(tmp_path_factory):
    """The real clips through the ingest and decode stages (32 frames of 64 px, audio at 16 kHz), once
    per run: ``(project, {stage module: its run})``. The decode and audio stage tests on real clips read
    this one store, as does the check of every clip's frames and audio that decode_clip's own test made
    by decoding them again: the 15 clips cost ~15 s of the two cores each time. (The visual stage's
    real-clip test decodes 4 frames of its own: on 32, C3D computes two clips per video.)
    Its users share an xdist worker (``pytest_collection_modifyitems``)."""
    if not real_clips():
        pytest.skip(f"real clips not found at {REAL_CLIPS} (they live in ../shared/data/videos)")
    from tests.stages.project import Project

    proj = Project(
        tmp_path_factory.mktemp("real_decoded"),
        {"data": {"input": str(REAL_CLIPS)}, "decode": {"num_frames": 32, "size": 64}},
    )
    return proj, {stage: proj.run_here(stage) for stage in ("stages.ingest", "stages.decode")}


@contextlib.contextmanager
def _uncapped():
    """Ray's processes start without this suite's one-thread cap: the executor must set it per actor
    itself (``RayWorker``), and a test must see what it set, not what the raylet inherited."""
    saved = os.environ.pop("PIPELINE_CPUS", None)
    try:
        yield
    finally:
        if saved is not None:
            os.environ["PIPELINE_CPUS"] = saved


@pytest.fixture(scope="module")
def ray_runtime():
    """One local Ray ray_session (2 CPUs) per test module; ``executor_ray.ray_session`` reuses it, never stops it."""
    ray = pytest.importorskip("ray")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    from pipeline.execution import ray_executor as executor_ray

    _release_intact()
    # what executor_ray.ray_session does for a local ray_session (workers import the tests' modules via the cwd)
    with _uncapped():
        ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level=logging.WARNING)
    executor_ray.quiet()
    yield ray
    ray.shutdown()


# The GCS declares a killed node dead after this many missed checks: ~3 s here, against 15-30 s with Ray's
# defaults (checks every 3 s, 10 s timeout, 5 misses), which the lost-node tests spent idle. The margin
# (three 2 s timeouts in a row) still rides out a raylet starved for a few seconds on two busy cores.
HEALTH_CHECKS = {
    "health_check_initial_delay_ms": 1000,
    "health_check_period_ms": 1000,
    "health_check_timeout_ms": 2000,
    "health_check_failure_threshold": 3,
}


def _start_cluster():
    ray = pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    from pipeline.execution import ray_executor as executor_ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    with _uncapped():
        cluster = Cluster(
            initialize_head=True,
            head_node_args={"num_cpus": 1, "include_dashboard": False, "_system_config": HEALTH_CHECKS},
        )
        worker = cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, logging_level=logging.WARNING)
    executor_ray.quiet()
    return cluster, worker


def _stop_cluster(cluster) -> None:
    import ray

    ray.shutdown()
    cluster.shutdown()


_INTACT: list = []  # the (cluster, worker) of intact_ray_cluster while consecutive tests share it


def _release_intact() -> None:
    while _INTACT:
        _stop_cluster(_INTACT.pop()[0])


@pytest.fixture
def ray_cluster():
    """A two-node Ray cluster on this machine: a head and a worker node of 1 CPU each, as separate raylets.

    ``ray.cluster_utils.Cluster`` starts them as processes of this test (no ``ray start``). Yields
    ``(cluster, worker_node)``. A test may kill the worker node (``cluster.remove_node``): each gets its own.
    """
    _release_intact()
    cluster, worker = _start_cluster()
    yield cluster, worker
    _stop_cluster(cluster)


@pytest.fixture
def intact_ray_cluster():
    """``ray_cluster`` for tests that never kill a node: consecutive such tests share one (a start costs
    10-20 s on two cores); it stops before any other test that starts Ray, and at the end of the run."""
    if not _INTACT:
        _INTACT.append(_start_cluster())
    return _INTACT[0]


def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    if nextitem is None or "intact_ray_cluster" not in getattr(nextitem, "fixturenames", ()):
        _release_intact()


@pytest.hookimpl(wrapper=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]):
    """Ray tests share one xdist worker, as do the users of ``real_decoded``; whole-pipeline (``slow``) tests
    start first.

    ``make test`` runs two workers (``-n 2 --dist loadgroup``). Two Ray runtimes on two cores starve each
    other's raylets (node-death timeouts then fire), so every test that starts Ray is in one group.
    The slow tests go first so that neither worker is left with a long test at the end.
    A wrapper: the marks are set before pytest-xdist reads them, and checked after it has (it appends
    ``@<group>`` to each marked test's id, which is what its scheduler groups by).
    """
    for item in items:
        uses_ray = {"ray_runtime", "ray_cluster", "intact_ray_cluster"} & set(
            getattr(item, "fixturenames", ())
        ) or "ray" in item.path.name
        if uses_ray:
            item.add_marker(pytest.mark.xdist_group("ray"))
        elif "real_decoded" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group("real_clips"))  # the store is made once per worker
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)  # stable: file order otherwise
    result = yield
    if getattr(config.option, "loadgroup", False):  # set on the workers of --dist loadgroup
        lost = [item.nodeid for item in items if item.get_closest_marker("xdist_group") and "@" not in item.nodeid]
        if lost:  # pytest 9.2 with pytest-xdist 3.8 did this silently: every group ran spread over both workers
            raise pytest.UsageError(
                f"--dist loadgroup ignored the xdist_group marks (e.g. {lost[0]}) with pytest {pytest.__version__}: "
                "use the versions pinned in pyproject.toml"
            )
    return result

"""decode, visual@resnet152 and audio on a two-node Ray cluster (``ray_cluster``): the same bytes as a local
run, and a lost node costs no video.

Rows reach the driver in completion order on Ray. The shard writer sorts them by ``video_id``
(``pipeline.core.shards``), so every shard file and failures table equals the local run's byte for byte:
the hashes in ``dvc.lock`` do not depend on the executor. Then the worker node is killed while
``python -m stages.visual resnet152`` runs on the cluster. The stage either completes (the node's
videos run again on the head) or fails with exactly one error line and no traceback. A re-run
completes, and its store equals the local one.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.stages.project import Project
from tests.stages.test_incremental import render
from tests.stages.test_ray_stages import BROKEN, configure, run_stages

pytest.importorskip("ray")

PATCH = {
    "audio": {"workers": 1, "feature_sets": ["mfcc"]},
    # threads: 1 locally and in each 1-CPU actor: the same thread count gives the same floats
    "visual": {
        "extractors": ["resnet152"],
        "batch_size": 1,
        "precision": "fp32",
        "threads": 1,
        "resnet152": {"num_frames": 2},
    },
    "executor": {"max_retries": 3},
}
STORES = ("decoded", "visual_resnet152.parquet", "audio.parquet")


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Project:
    tmp = tmp_path_factory.mktemp("ray_cluster")
    corpus = tmp / "corpus"
    paths = render(corpus, 10, seed=5)
    paths[0].rename(corpus / f"{BROKEN}.mp4")
    proj = Project(tmp / "project", {"data": {"input": str(corpus)}, **PATCH})
    done = proj.run("-m", "stages.ingest")
    assert done.returncode == 0, done.stderr
    (corpus / f"{BROKEN}.mp4").write_bytes(b"\0" * 4096)  # decode fails in a worker: a failures-table row
    return proj


@pytest.fixture(scope="module")
def local(project: Project) -> Path:
    run_stages(project, "local", "local")
    return project.root / "local"


def files(out: Path) -> dict[str, bytes]:
    """Every Parquet file of the three stores and their failures tables, by path under ``out``."""
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*.parquet")) if p.is_file()}


def test_cluster_run_writes_the_local_bytes(project, local, intact_ray_cluster, caplog):
    with caplog.at_level(logging.INFO, logger="pipeline.execution.ray_executor"):
        run_stages(project, "ray", "ray")
    want, got = files(local), files(project.root / "ray")
    # 3 stores x 2 shards (decode.shards), the decoded index and 3 failures tables
    assert sorted(got) == sorted(want) and len(want) == 3 * 2 + 4
    assert [name for name in want if got[name] != want[name]] == []
    # one actor per CPU of the two nodes (visual: 1 thread, so 1 CPU per actor), no more than their batches
    assert "decode: 2 actors (2 CPUs / 1, 10 batches)" in caplog.text
    assert "visual@resnet152: 2 actors (2 CPUs / 1, 9 batches)" in caplog.text
    assert "audio: 1 actors (2 CPUs / 1, 1 batches)" in caplog.text


def visual_actor_ready_on(node_id: str) -> bool:
    """A visual actor on that node has built its model (Ray Data sends it batches from then on)."""
    from ray._private import state  # GCS actor table (Ray's debugging helper): needs no dashboard

    return any(
        "Worker_visual" in info["ActorClassName"] and info["State"] == "ALIVE" and info["Address"]["NodeID"] == node_id
        for info in state.actors().values()
    )


def run_visual(project: Project) -> subprocess.Popen:
    """``python -m stages.visual resnet152`` in the project, as ``Project.run`` would start it."""
    bindir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": bindir + os.pathsep + os.environ.get("PATH", "")}
    env.pop("PYTHONPATH", None)
    return subprocess.Popen(
        [sys.executable, "-m", "stages.visual", "resnet152"],
        cwd=project.root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_lost_node_mid_stage_completes_or_fails_in_one_line(project, local, ray_cluster):
    cluster, worker = ray_cluster
    configure(project, "ray", "lost")
    project.set_params({"executor": {"address": cluster.address}})  # a driver in its own process joins it
    shutil.copytree(local / "decoded", project.root / "lost" / "decoded")
    proc = run_visual(project)
    try:
        deadline = time.monotonic() + 300
        while not visual_actor_ready_on(worker.node_id) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)  # into its first batches
        assert proc.poll() is None, "the stage ended before the node could be killed mid-run"
        cluster.remove_node(worker, allow_graceful=False)
        out, err = proc.communicate(timeout=400)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    print(f"visual after losing the worker node: exit {proc.returncode}", err[-1500:])  # shown when it fails
    assert "Traceback" not in err, err[-3000:]
    if proc.returncode != 0:
        errors = [line for line in err.splitlines() if " stage ERROR: " in line]
        assert proc.returncode == 1 and len(errors) == 1, err[-3000:]
        assert "visual@resnet152: the ray executor failed with " in errors[0]
        rerun = run_visual(project)
        out, err = rerun.communicate(timeout=400)
        assert rerun.returncode == 0, err[-3000:]
    want = files(local)
    got = files(project.root / "lost")
    for name in ("visual_resnet152.parquet", "visual_resnet152_failures.parquet"):
        names = [n for n in want if n.startswith(name)]
        assert names and [n for n in names if got.get(n) != want[n]] == [], name

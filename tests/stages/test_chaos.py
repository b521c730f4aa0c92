"""Chaos: kill each per-video stage (SIGKILL, at a seeded random point of its run) under `dvc repro`, re-run,
and the stores equal a clean run's, complete, with no process of the killed stage left behind."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline.core import store
from tests.stages.project import Project

PATCH = {"visual": {"extractors": ["resnet152"], "resnet152": {"keep_sequence": False}, "batch_size": 1}}
STORES = ("data/decoded", "features/stores/visual_resnet152.parquet", "features/stores/audio.parquet")
TARGETS = ("decode", "visual", "audio")  # the stage modules killed, one per seed
TARGET = ["audio", "visual@resnet152"]  # dvc repro these (and what they need)


def children(pid: int) -> set[int]:
    """Every descendant PID of ``pid`` (from /proc; threads' children included)."""
    out, todo = set(), [pid]
    while todo:
        p = todo.pop()
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                kids = [int(k) for k in (task / "children").read_text().split()]
            except OSError:
                continue
            todo += [k for k in kids if k not in out]
            out.update(kids)
    return out


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def repro_and_kill(proj: Project, module: str, seed: int) -> tuple[int, set[int]]:
    """Run `dvc repro`, SIGKILL `python -m stages.<module>` once it has run a random while; (rc, its descendants)."""
    bindir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": bindir + os.pathsep + os.environ["PATH"], "DVC_NO_ANALYTICS": "1"}
    env.pop("PYTHONPATH", None)
    dvc = subprocess.Popen(
        [os.path.join(bindir, "dvc"), "repro", *TARGET],
        cwd=proj.root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    delay = random.Random(seed).uniform(0.1, 1.5)  # the tiny corpus's stages take seconds
    victim, seen, deadline = None, set(), time.monotonic() + 300
    while dvc.poll() is None and time.monotonic() < deadline:
        for pid in children(dvc.pid):
            if f"stages.{module}" in cmdline(pid):
                victim = victim or (pid, time.monotonic())
        if victim and time.monotonic() - victim[1] >= delay:
            seen = children(victim[0])
            try:
                os.kill(victim[0], signal.SIGKILL)
            except ProcessLookupError:  # it finished first: nothing to kill, nothing to resume
                pass
            break
        time.sleep(0.05)
    out, _ = dvc.communicate(timeout=300)
    assert victim is not None, f"stages.{module} never started:\n{out}"
    return dvc.returncode, seen


def assert_equal_stores(clean: Path, chaos: Path) -> None:
    for path in STORES[1:]:
        a, b = store.read_table(clean / path), store.read_table(chaos / path)
        assert a.equals(b), path
        assert store.completion(chaos / path) == store.completion(clean / path)
    for name in sorted(p.name for p in (clean / STORES[0]).glob("*.parquet")):
        a, b = pq.read_table(clean / STORES[0] / name), pq.read_table(chaos / STORES[0] / name)
        assert a.equals(b), name
    for fail in ("features/stores/audio_failures.parquet", "features/stores/visual_resnet152_failures.parquet"):
        assert pq.read_table(clean / fail).equals(pq.read_table(chaos / fail)), fail


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> Project:
    """The reference: the same targets run once without a kill (the chaos tests share one xdist worker)."""
    proj = Project(tmp_path_factory.mktemp("clean"), PATCH)
    done = proj.run("dvc", "repro", *TARGET)
    assert done.returncode == 0, done.stdout + done.stderr
    return proj


@pytest.mark.slow
@pytest.mark.parametrize("seed, module", list(enumerate(TARGETS)), ids=TARGETS)
def test_killed_stages_resume_to_the_clean_result_and_leave_no_process(clean, tmp_path, seed, module):
    chaos = Project(tmp_path / "chaos", PATCH)  # a fresh project: the killed stage runs for the first time
    rc, descendants = repro_and_kill(chaos, module, seed)
    deadline = time.monotonic() + 10
    while any(alive(p) for p in descendants) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = {p: cmdline(p) for p in descendants if alive(p)}
    assert not left, f"processes of the killed stages.{module} still running: {left}"
    if rc != 0:  # killed mid-run: what it wrote never reads as complete
        for path in STORES[1:]:
            if (chaos.root / path).is_dir() and store.completion(chaos.root / path) is None:
                with pytest.raises(store.StoreError, match="incomplete"):
                    store.read_table(chaos.root / path)
    done = chaos.run("dvc", "repro", *TARGET)
    assert done.returncode == 0, done.stdout + done.stderr
    assert_equal_stores(clean.root, chaos.root)

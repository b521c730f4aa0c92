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
from tests.stages.test_incremental import FROM_SCRATCH

PATCH = {"visual": {"extractors": ["resnet152"], "resnet152": {"keep_sequence": False}, "batch_size": 1}}
STORES = ("data/decoded", "features/stores/visual_resnet152.parquet", "features/stores/audio.parquet")
TARGETS = ("decode", "visual", "audio")  # the stage modules killed, one per `dvc repro`
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


def repro_and_kill(proj: Project, modules: list[str], seed: int) -> tuple[int, set[int], str | None]:
    """Run `dvc repro`; SIGKILL the first `python -m stages.<module>` of ``modules`` once it has run a random
    while (one that finishes first hands the kill to the next one that starts). (rc, its descendants, the
    module killed or None)."""
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
    victim, seen, killed, deadline = None, set(), None, time.monotonic() + 300
    while dvc.poll() is None and time.monotonic() < deadline:
        running = {pid: m for pid in children(dvc.pid) for m in modules if f"stages.{m}" in cmdline(pid)}
        if victim and victim[0] not in running:  # it finished before its time: the next stage is the victim
            victim = None
        if victim is None and running:
            pid, module = next(iter(running.items()))
            victim = (pid, time.monotonic(), module)
        if victim and time.monotonic() - victim[1] >= delay:
            seen = children(victim[0])
            try:
                os.kill(victim[0], signal.SIGKILL)
            except ProcessLookupError:  # it finished between the look and the kill
                victim = None
                continue
            killed = victim[2]
            break
        time.sleep(0.05)
    dvc.communicate(timeout=300)
    return dvc.returncode, seen, killed


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
    proj.run_here_each("stages.sample", *FROM_SCRATCH)  # what `dvc repro` runs for TARGET, in this process
    return proj


@pytest.mark.slow
def test_killed_stages_resume_to_the_clean_result_and_leave_no_process(clean, tmp_path):
    """One project, each stage killed in turn on its first run: decode, then visual (decode done by the
    re-run before it), then audio; then one clean re-run. (Three projects, one kill each, cost twice
    the time for the same kills: every stage upstream of a victim ran again in each.)"""
    chaos = Project(tmp_path / "chaos", PATCH)  # a fresh project: each killed stage runs for the first time
    todo = list(TARGETS)
    for seed in range(len(TARGETS)):
        rc, descendants, module = repro_and_kill(chaos, todo, seed)
        if module is None:  # every stage left finished before its time: nothing more to kill
            break
        todo.remove(module)
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
    assert len(todo) < len(TARGETS), "no stage was killed: each finished before its random delay"
    done = chaos.run("dvc", "repro", *TARGET)
    assert done.returncode == 0, done.stdout + done.stderr
    assert_equal_stores(clean.root, chaos.root)

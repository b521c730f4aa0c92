"""Kill a process with SIGKILL and check that every process it started died with it (Linux ``/proc``).

The tree is read from ``/proc/<pid>/task/*/children`` (no psutil: the local executor does not need it).
A process counts as gone once its ``/proc`` entry is missing or it is a zombie (dead, waiting for
whoever reaps orphans to collect its exit status).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
needs_proc = pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc")


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with suppress(OSError):
            found += [int(c) for c in (task / "children").read_text().split()]
    return found


def descendants(pid: int) -> list[int]:
    out, todo = [], children(pid)
    while todo:
        child = todo.pop()
        out.append(child)
        todo += children(child)
    return out


def name(pid: int) -> str:
    with suppress(OSError):
        return Path(f"/proc/{pid}/comm").read_text().strip()
    return "?"


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # the state follows "(comm)"


def survivors_of_kill(code: str, ready: Callable[[list[int]], bool], *, grace: float = 5.0) -> list[str]:
    """Run ``python -c code`` (cwd: the repo), wait until ``ready(descendants)``, SIGKILL it.

    Returns ``"<comm>(<pid>)"`` for each descendant still alive ``grace`` seconds later (the test wants
    none). Survivors are then killed here, by PID, so a failing test leaves nothing running either.
    """
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not ready(tree := descendants(proc.pid)):
            if proc.poll() is not None:
                pytest.fail(f"the script exited ({proc.returncode}) before it was ready: {proc.stderr.read()[-2000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"not ready after 120 s; descendants: {[name(p) for p in tree]}")
            time.sleep(0.1)
        tree = descendants(proc.pid)  # again: ``ready`` may have seen the tree half-built
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        end = time.monotonic() + grace
        while any(alive(p) for p in tree) and time.monotonic() < end:
            time.sleep(0.1)
        left = [p for p in tree if alive(p)]
        survivors = [f"{name(p)}({p})" for p in left]
        for pid in left:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return survivors
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()

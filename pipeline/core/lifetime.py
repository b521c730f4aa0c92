"""Child processes that die with their parent, so a killed stage leaves nothing running.

A stage killed with SIGKILL (``kill -9``, the OOM killer, a cancelled CI job) runs no cleanup. Its
pool workers, their fork server, the resource tracker and ffmpeg children would run on, for minutes
on a long video, and starve the next run of the machine's few cores. On Linux,
``prctl(PR_SET_PDEATHSIG, SIGKILL)`` asks the kernel to kill a process when its parent dies. On
other systems these functions do nothing.

Mind three properties of that setting:

- It fires when the *thread* that forked the child exits, not only the process. Start children
  from a thread that outlives them: ``run`` blocks until its child exits, and the process pools are
  consumed from the stage's main thread.
- ``fork`` clears it and ``exec`` keeps it. Every generation sets it for itself: ``popen_kwargs``
  does it between fork and exec, and ``tie_forked_children`` does it in each forked child.
- The parent may already be dead when the child sets it. Then the signal never comes, so the
  child compares its parent with the one it expects and kills itself.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from functools import partial
from typing import Any

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
# The stage's PID, for a fork server to check that the stage is still its parent (see pool_server).
PARENT_ENV = "PIPELINE_PARENT_PID"

# Resolved once, in the parent: a child between fork and exec should only call it, nothing more.
_prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None
_forker = 0  # in a child, the PID that forked it (written by the before-fork hook, copied by fork)


def die_with_parent(parent: int | None = None) -> None:
    """SIGKILL this process when its parent dies (Linux). ``parent``: the PID it must still have."""
    if _prctl is None:
        return
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if parent is not None and os.getppid() != parent:  # the parent died before the prctl call
        os.kill(os.getpid(), signal.SIGKILL)


def popen_kwargs() -> dict[str, Any]:
    """``subprocess`` arguments that make the child die with this process (with the calling thread)."""
    if _prctl is None:
        return {}
    # preexec_fn runs between fork and exec. With other threads running, only async-signal-safe
    # work is allowed there, so this calls the already resolved prctl and reads the parent PID.
    return {"preexec_fn": partial(die_with_parent, os.getpid())}


def run(cmd: Sequence[str], *, text: bool = False) -> subprocess.CompletedProcess:
    """``subprocess.run(cmd)`` with stdout and stderr captured, no check, and a child that dies with us."""
    return subprocess.run(list(cmd), capture_output=True, text=text, check=False, **popen_kwargs())


def _remember_forker() -> None:
    global _forker
    _forker = os.getpid()


def _tie_to_forker() -> None:
    die_with_parent(_forker)


def tie_forked_children() -> None:
    """From now on, every child this process forks (``os.fork``, multiprocessing) dies with it.

    Plain ``subprocess`` children without ``preexec_fn`` run no fork hooks: use ``popen_kwargs``.
    """
    if _prctl is not None:
        os.register_at_fork(before=_remember_forker, after_in_child=_tie_to_forker)

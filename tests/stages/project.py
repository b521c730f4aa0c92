"""Run the project's stages in a throw-away copy of the repository with edited params."""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import os
import runpy
import shutil
import subprocess
import sys
import traceback
import warnings
from pathlib import Path

import yaml

from tests.conftest import ROOT

TINY = {
    "sample": {
        "n_videos": 8,
        "min_seconds": 1.0,
        "max_seconds": 2.0,
        "sizes": [[64, 48], [48, 64]],
        "fps": [10, 15],
        "n_users": 5,
        "impressions_per_user": 4,
    },
    "decode": {"num_frames": 8, "size": 32, "shards": 2},
    # explicit: the placement stage (run by every `dvc repro`) then needs no torch import; the auto path
    # runs in test_dvc_repro_runs_the_pipeline_and_then_has_nothing_to_do
    "visual": {"device": "cpu", "precision": "fp32"},
}
# For tests that run the whole default DAG and assert on its stores, not on what the models learn:
# the trainers' defaults (150 classify epochs, 2000 x 1500 synthetic rec users x items) dominate their time.
QUICK_TRAINING = {
    "ctr": {"epochs": 2, "patience": 1},
    "classify": {"epochs": 3, "patience": 1},
    "rec_sample": {"realistic": {"n_users": 120, "n_items": 90}},
    "rec": {"epochs": 2, "patience": 1, "warmup": 0, "eval_every": 1},
}


def deep_update(base: dict, patch: dict) -> dict:
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            deep_update(base[key], value)
        else:
            base[key] = value
    return base


def copy_worktree(dest: Path) -> None:
    """The repository's tracked and untracked (not ignored) files, without tests/ and dvc.lock, into ``dest``.

    Also used by bench/precision.py, which runs experiments in such a copy."""
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\n")
    for rel in filter(None, files):
        if (ROOT / rel).is_file() and not rel.startswith("tests/"):
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, dest / rel)
    (dest / "dvc.lock").unlink(missing_ok=True)


class Project:
    def __init__(self, root: Path, patch: dict | None = None):
        self.root = root
        copy_worktree(root)
        subprocess.run(["git", "init", "-q"], cwd=root, check=True)
        # copies: deep_update shares the patch's nested dicts, so a later patch would edit TINY itself
        self.set_params(deep_update(copy.deepcopy(TINY), copy.deepcopy(patch or {})))

    def set_params(self, patch: dict) -> None:
        raw = yaml.safe_load((ROOT / "params.yaml").read_text())
        current = self.root / "params.yaml"
        if current.exists():
            raw = yaml.safe_load(current.read_text())
        current.write_text(yaml.safe_dump(deep_update(raw, patch), sort_keys=False))

    def commit(self, message: str = "init") -> None:
        """Commit everything: ``dvc exp run`` needs a commit to start from, as a user's clone has."""
        git = ["git", "-c", "user.email=t@t", "-c", "user.name=t"]
        subprocess.run([*git, "add", "-A"], cwd=self.root, check=True, capture_output=True)
        subprocess.run([*git, "commit", "-qm", message], cwd=self.root, check=True, capture_output=True)

    def git_status(self) -> str:
        return subprocess.run(["git", "status", "--porcelain"], cwd=self.root, capture_output=True, text=True).stdout

    def run(self, *args: str) -> subprocess.CompletedProcess:
        """``python -m ...`` or ``dvc ...`` inside the copy, with this venv's executables first on PATH."""
        bindir = str(Path(sys.executable).parent)
        env = {**os.environ, "PATH": bindir + os.pathsep + os.environ.get("PATH", ""), "DVC_NO_ANALYTICS": "1"}
        env.pop("PYTHONPATH", None)
        cmd = [sys.executable, *args] if args[0] == "-m" else [os.path.join(bindir, args[0]), *args[1:]]
        return subprocess.run(cmd, cwd=self.root, env=env, capture_output=True, text=True, timeout=600)

    def run_here(self, module: str, *args: str) -> subprocess.CompletedProcess:
        """``python -m <module> <args>`` in this test's process: the same stage code and exit path
        (``runpy`` runs the module as ``__main__``, so ``run_stage`` turns a user's error into one line and
        exit status 1), without the 1-7 s a fresh interpreter spends importing torch, pyarrow and the rest.

        For tests of what a stage writes or says; what needs a real process (DVC, signals, warnings on
        stderr, code edited in the copy) uses ``run``. The log goes to ``stderr`` in the stage's format; an
        uncaught exception becomes a traceback there and exit status 1, as in a subprocess.
        """
        import torch

        out, err = io.StringIO(), io.StringIO()
        handler = logging.StreamHandler(err)
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s: %(message)s"))
        root = logging.getLogger()
        saved = (os.getcwd(), sys.argv, root.level, torch.get_num_threads())
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        os.chdir(self.root)
        sys.argv = [module, *args]
        code = 0
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), warnings.catch_warnings():
                # a test module may have imported the stage's module already: runpy then runs a second copy of
                # it as __main__, which is what `python -m` runs, and says so
                warnings.filterwarnings("ignore", "'stages\\..*' found in sys.modules", RuntimeWarning)
                runpy.run_module(module, run_name="__main__", alter_sys=False)
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
        except Exception:  # what a subprocess would print before exiting 1
            err.write(traceback.format_exc())
            code = 1
        finally:
            os.chdir(saved[0])
            sys.argv = saved[1]
            root.removeHandler(handler)
            root.setLevel(saved[2])
            torch.set_num_threads(saved[3])
        return subprocess.CompletedProcess([module, *args], code, out.getvalue(), err.getvalue())

    def run_here_each(self, *commands: str) -> None:
        """``run_here`` each of ``commands`` (``"stages.visual resnet152"``: a module and its arguments) in
        turn, as ``dvc repro`` would run those stages; fails at the first that fails. For reference runs
        whose stores a test compares with a run through DVC."""
        for command in commands:
            done = self.run_here(*command.split())
            assert done.returncode == 0, f"{command}: {done.stderr[-3000:]}"

"""pipeline.execution.executors: the local reference backend, and Ray Data (one local runtime per module) against it."""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from pipeline.core.config import ConfigError, build
from pipeline.execution import executors as executor
from pipeline.execution.executors import Job
from pipeline.params import ExecutorConfig
from registry import UnknownName

ROOT = Path(__file__).resolve().parents[3]
LOCAL = ExecutorConfig(kind="local", address="", num_cpus=0, num_gpus=0, actors=0, max_retries=3)
RAY = ExecutorConfig(kind="ray", address="", num_cpus=2, num_gpus=0, actors=0, max_retries=3)


class Toy:
    """A worker with state, every awkward value type, a failing row, and hooks to count and kill it."""

    def __init__(self, log_dir: str | None = None, victim: str | None = None) -> None:
        self.log_dir, self.victim = log_dir, victim
        self.scale = np.float32(2)  # the "weights", built once per worker
        if log_dir:
            with open(Path(log_dir) / "constructed", "a") as fh:
                fh.write(f"{os.getpid()}\n")

    def __call__(self, batch: list[dict]) -> list[dict]:
        return [self._one(row) for row in batch]

    def _one(self, row: dict) -> dict:
        if row["video_id"] == "boom":
            raise ValueError("cannot read this video")
        if row["video_id"] == self.victim and not (Path(self.log_dir) / "killed").exists():
            (Path(self.log_dir) / "victim.pid").write_text(str(os.getpid()))
            time.sleep(60)  # the test kills this process long before
        x = row["x"]
        return {
            "video_id": row["video_id"],
            "x2": x * self.scale,
            "sum": float(x.sum()),
            "raw": row["raw"][::-1],
            "none": None,
            "meta": {"shape": x.shape, "tags": [row["video_id"], None]},
        }


def halve(batch: list[dict]) -> list[dict]:
    """A prepare step; an odd-numbered video "fails to decode" and must skip the worker."""
    out = []
    for row in batch:
        if row["video_id"].endswith("7"):
            out.append({"video_id": row["video_id"], "failure": {"reason": "decode_error", "message": "odd"}})
        else:
            out.append({**row, "x": row["x"][::2]})
    return out


def make_rows(n: int) -> list[dict]:
    rng = np.random.default_rng(0)
    rows = [
        {
            "video_id": f"v{i:03d}",
            "x": rng.random((i % 3 + 1, 4)).astype(np.float32 if i % 2 else np.float64),
            "raw": bytes([i, 0, 255, 0]),
        }
        for i in range(n)
    ]
    rows.insert(3, {"video_id": "boom", "x": np.zeros(2), "raw": b""})
    rows.insert(5, {"video_id": "gone", "failure": {"reason": "missing_file", "message": "no such file"}})
    return rows


def by_id(rows) -> dict[str, dict]:
    out = {}
    for row in rows:
        assert row["video_id"] not in out, f"{row['video_id']} came back twice"
        out[row["video_id"]] = row
    return out


def assert_same(a, b) -> None:
    """Exact equality, including types, dtypes and shapes (np.testing ignores dtype)."""
    assert type(a) is type(b), (a, b)
    if isinstance(a, dict):
        assert list(a) == list(b)
        for key in a:
            assert_same(a[key], b[key])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_same(x, y)
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)
    else:
        assert a == b


def test_local_turns_a_raising_row_into_a_failure_row_and_keeps_its_batch():
    out = by_id(executor.run(Job("toy", Toy, batch_size=4), make_rows(8), LOCAL))
    assert sorted(out) == sorted(["boom", "gone"] + [f"v{i:03d}" for i in range(8)])
    assert out["boom"]["failure"] == {"reason": "worker_error", "message": "ValueError: cannot read this video"}
    assert out["gone"] == {"video_id": "gone", "failure": {"reason": "missing_file", "message": "no such file"}}
    # boom shared a batch with v002 and v003: they are processed, not failed with it
    assert out["v002"]["sum"] == pytest.approx(float(make_rows(8)[2]["x"].sum()))
    assert out["v003"]["raw"] == bytes([0, 255, 0, 3])


def test_local_prepare_failures_skip_the_worker():
    job = Job("toy", Toy, batch_size=3, prepare=halve)
    out = by_id(executor.run(job, make_rows(9), LOCAL))
    assert out["v007"] == {"video_id": "v007", "failure": {"reason": "decode_error", "message": "odd"}}
    assert out["v005"]["x2"].shape == (2, 4)  # (3, 4) halved
    assert out["v004"]["meta"]["shape"] == (1, 4)  # (2, 4) halved


def test_unknown_kind_names_the_valid_ones():
    with pytest.raises(UnknownName, match="'dask' in executor.kind.*registered: local, ray"):
        ExecutorConfig(kind="dask", address="", num_cpus=0, num_gpus=0, actors=0, max_retries=0)
    with pytest.raises(ConfigError, match="'dask' in executor.kind.*registered: local, ray"):
        build(
            ExecutorConfig,
            {"kind": "dask", "address": "", "num_cpus": 0, "num_gpus": 0, "actors": 0, "max_retries": 0},
            "executor",
        )
    with pytest.raises(ConfigError, match="executor"):
        build(
            ExecutorConfig,
            {"kind": "local", "address": "", "num_cpus": -1, "num_gpus": 0, "actors": 0, "max_retries": 0},
            "executor",
        )


def test_local_backend_never_imports_ray():
    code = (
        "import sys; sys.modules['ray'] = None\n"  # any `import ray` now raises
        "from tests.pipeline.execution.test_executors import LOCAL, Toy, make_rows\n"
        "from pipeline.execution import executors as executor\n"
        "print(len(list(executor.run(executor.Job('t', Toy), make_rows(2), LOCAL))))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "4"


def test_ray_starts_a_local_runtime_and_stops_what_it_started():
    pytest.importorskip("ray")
    code = (
        "import ray, dataclasses\n"
        "from tests.pipeline.execution.test_executors import RAY, Toy, make_rows, by_id\n"
        "from pipeline.execution import executors as executor\n"
        "cfg = dataclasses.replace(RAY, num_cpus=1)\n"
        "out = by_id(executor.run(executor.Job('t', Toy, batch_size=8), make_rows(6), cfg))\n"
        "print(len(out), out['boom']['failure']['reason'], ray.is_initialized())"
    )
    env = {**os.environ, "RAY_ADDRESS": ""}  # never join a cluster the caller may have configured
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True, timeout=240
    )
    assert done.stdout.split()[-3:] == ["8", "worker_error", "False"]


def test_ray_equals_local_and_builds_each_worker_once(ray_runtime, tmp_path):
    rows = make_rows(24)
    # half-CPU actors: on the 2-CPU runtime, two of them leave a CPU for the prepare tasks
    job = Job("toy", functools.partial(Toy, str(tmp_path)), batch_size=3, num_cpus=0.5, concurrency=2, prepare=halve)
    ray_out = by_id(executor.run(job, rows, RAY))
    local_out = by_id(executor.run(Job("toy", Toy, batch_size=3, prepare=halve), rows, LOCAL))
    assert sorted(ray_out) == sorted(local_out) == sorted(row["video_id"] for row in rows)
    for video_id in local_out:
        assert_same(ray_out[video_id], local_out[video_id])
    pids = (tmp_path / "constructed").read_text().split()
    assert len(pids) == len(set(pids)) == 2  # 9 batches, 2 actors, each built its worker once
    assert os.getpid() not in map(int, pids)


def test_ray_survives_a_killed_worker_without_losing_or_repeating_rows(ray_runtime, tmp_path):
    rows = [row for row in make_rows(16) if row["video_id"] != "boom"]
    job = Job("toy", functools.partial(Toy, str(tmp_path), victim="v009"), batch_size=2, concurrency=2)
    killed: list[int] = []

    def kill_victim() -> None:
        pid_file = tmp_path / "victim.pid"
        # generous: on a loaded 2-core machine the first actor has taken over 50 s to reach the victim
        deadline = time.monotonic() + 200
        while not pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        if not pid_file.exists():
            return  # the assertion below names what went wrong, not this thread's traceback
        (tmp_path / "killed").touch()  # before the kill, so the retried batch completes
        killed.append(int(pid_file.read_text()))
        os.kill(killed[0], signal.SIGKILL)

    killer = threading.Thread(target=kill_victim)
    killer.start()
    out = by_id(executor.run(job, rows, RAY))  # by_id fails on a repeated row
    killer.join()
    assert sorted(out) == sorted(row["video_id"] for row in rows)
    assert out["v009"]["sum"] == pytest.approx(float(by_id(rows)["v009"]["x"].sum()))
    constructed = (tmp_path / "constructed").read_text().split()
    # the first pool's actors (two, or one when the machine is loaded and the second had not started
    # before the kill), then the re-run's pool (one or two, one per batch left): the killed worker and at
    # least one rebuilt one
    assert killed, "the victim's worker never wrote its pid: nothing was killed"
    assert str(killed[0]) in constructed and len(constructed) in (2, 3, 4) and len(set(constructed)) == len(constructed)

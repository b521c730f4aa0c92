"""Executor benchmark: the same work through ``executor.kind: local`` and a local Ray ray_session.

    python bench/executor.py [--rows 400] [--clips 8] [--actors 2]

Two workloads: a CPU-bound toy worker (pure Python, so no BLAS threads blur the count) and a
real decode (``pipeline.decode.worker.decode_row`` on generated H.264 clips, 32 frames + audio each).
``local`` is one worker in this process; Ray runs ``--actors`` actors. Ray's start-up (``ray.init``
of a local ray_session) is timed once and reported apart; the Ray times include building the actors.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import subprocess
import tempfile
import time
from pathlib import Path

import ray

from pipeline.core.failures import Failure
from pipeline.decode.ffmpeg import probe
from pipeline.decode.worker import decode_row
from pipeline.execution import executors as executor
from pipeline.execution import ray_executor as executor_ray
from pipeline.params import DecodeConfig, ExecutorConfig, load_params


class Spin:
    """CPU-bound toy: ~10-20 ms of pure-Python arithmetic per row."""

    def __call__(self, batch: list[dict]) -> list[dict]:
        return [{"video_id": row["video_id"], "value": sum(i * i % 7 for i in range(row["n"]))} for row in batch]


class Decode:
    """``decode_row`` as a Worker: the decode stage's per-video work."""

    def __init__(self, cfg: DecodeConfig) -> None:
        self.cfg = cfg

    def __call__(self, batch: list[dict]) -> list[dict]:
        out = []
        for row in batch:
            got = decode_row(row, self.cfg)
            if isinstance(got, Failure):
                out.append({"video_id": row["video_id"], "failure": {"reason": got.reason, "message": got.message}})
            else:
                out.append({"video_id": got["video_id"], "frames_bytes": len(got["frames"])})
        return out


def clip_rows(folder: Path, n: int) -> list[dict]:
    rows = []
    for i in range(n):
        path = folder / f"clip{i}.mp4"
        subprocess.run(
            [
                "ffmpeg",
                "-nostdin",
                "-v",
                "error",
                "-y",
                "-f",
                "lavfi",
                "-i",
                "testsrc2=s=640x360:r=30:d=6",
                "-f",
                "lavfi",
                "-i",
                f"sine=f={300 + 40 * i}:r=44100:d=6",
                "-c:v",
                "libx264",
                "-preset",
                "veryfast",
                "-c:a",
                "aac",
                str(path),
            ],
            check=True,
        )
        rows.append(
            {"video_id": f"clip{i}", "path": str(path), "fingerprint": f"fp{i}", **dataclasses.asdict(probe(path))}
        )
    return rows


def timed_run(job: executor.Job, rows: list[dict], cfg: ExecutorConfig) -> float:
    start = time.perf_counter()
    out = list(executor.run(job, rows, cfg))
    elapsed = time.perf_counter() - start
    assert len(out) == len(rows) and not any("failure" in row for row in out), out[:2]
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=400)
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--actors", type=int, default=2)
    args = parser.parse_args()
    local = ExecutorConfig(kind="local", address="", num_cpus=0, num_gpus=0, actors=0, max_retries=3)
    on_ray = dataclasses.replace(local, kind="ray", actors=args.actors)
    decode_cfg = load_params(Path(__file__).resolve().parents[1] / "params.yaml").decode

    start = time.perf_counter()
    with executor_ray.ray_session(on_ray), tempfile.TemporaryDirectory() as tmp:
        startup = time.perf_counter() - start
        workloads = [
            (
                "toy CPU (pure Python)",
                executor.Job("spin", Spin, batch_size=4),
                [{"video_id": f"v{i}", "n": 150_000} for i in range(args.rows)],
            ),
            (
                "decode_row (640x360, 6 s)",
                executor.Job("decode", functools.partial(Decode, decode_cfg)),
                clip_rows(Path(tmp), args.clips),
            ),
        ]
        cpus = int(ray.cluster_resources()["CPU"])
        print(
            f"Ray local ray_session start-up: {startup:.1f} s ({cpus} CPUs, {args.actors} actors per job; "
            "the Ray rows include starting the actors)\n",
            flush=True,
        )
        print("| workload | rows | local (rows/s) | local Ray (rows/s) | Ray / local |")
        print("|---|---|---|---|---|")
        for name, job, rows in workloads:
            t_local = timed_run(job, rows, local)
            t_ray = timed_run(job, rows, on_ray)
            print(
                f"| {name} | {len(rows)} | {len(rows) / t_local:.1f} | {len(rows) / t_ray:.1f} "
                f"| {t_local / t_ray:.2f}x |",
                flush=True,
            )


if __name__ == "__main__":
    main()

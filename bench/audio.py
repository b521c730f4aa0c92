"""Benchmark of the audio stage's features: seconds of audio per wall second, all feature sets on.

Tracks: the audio of the real clips in ../shared/data/videos (decoded with pipeline.decode.ffmpeg, as the
decode stage does) plus N generated 30 s tracks at 16 kHz (tones, chirps, noise, silent gaps).
Prints markdown tables: throughput per track set with worker processes (the stage's way), the
parallel modes compared on the generated tracks, and the one-time warm-up costs.

    .venv/bin/python bench/audio.py [--tracks 100] [--workers 2]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
from functools import partial
from pathlib import Path

import numpy as np

from pipeline.audio import features as audio
from pipeline.decode.ffmpeg import MediaError, decode_clip, probe
from pipeline.execution.pools import bounded_map, bounded_process_map
from pipeline.params import load_params

RATE = 16000
REAL_CLIPS = Path(__file__).resolve().parents[2] / "shared" / "data" / "videos"


def real_tracks() -> list[np.ndarray]:
    tracks = []
    for path in sorted(REAL_CLIPS.glob("*.*")) if REAL_CLIPS.is_dir() else []:
        try:
            info = probe(path)
            clip = decode_clip(str(path), info, 1, "uniform", 8, RATE)
        except MediaError:
            continue
        if clip.audio is not None:
            tracks.append(clip.audio)
    return tracks


def generated_tracks(n: int, seconds: float = 30.0) -> list[np.ndarray]:
    rng = np.random.default_rng(2026)
    t = np.arange(int(seconds * RATE)) / RATE
    tracks = []
    for _ in range(n):
        y = 0.05 * rng.standard_normal(t.size)
        for freq in rng.uniform(80, 4000, size=3):
            y += (
                rng.uniform(0.05, 0.3)
                * np.sin(2 * np.pi * freq * t)
                * (1 + np.sin(2 * np.pi * rng.uniform(0.1, 2) * t))
                / 2
            )
        f0, f1 = rng.uniform(100, 6000, size=2)
        y += 0.1 * np.sin(2 * np.pi * (f0 * t + (f1 - f0) * t**2 / (2 * seconds)))  # a chirp
        gap = int(rng.uniform(0, seconds - 2) * RATE)
        y[gap : gap + 2 * RATE] = 0.0  # two seconds of digital silence
        tracks.append(np.clip(y, -1, 1).astype(np.float32))
    return tracks


def extract(samples: np.ndarray, cfg) -> tuple[dict[str, np.ndarray], float]:
    """Features plus the CPU seconds this thread spent on them (load-independent)."""
    start = time.thread_time()
    return audio.features(samples, RATE, cfg), time.thread_time() - start


def timed(mode: str, tracks: list[np.ndarray], cfg, workers: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds summed over tracks) for one parallel mode."""
    fn = partial(extract, cfg=cfg)
    start = time.perf_counter()
    if mode == "in-process":
        results = list(map(fn, tracks))
    elif mode == "threads":
        results = list(bounded_map(fn, tracks, workers))
    else:
        results = list(
            bounded_process_map(
                fn, tracks, workers, initializer=audio.warm_up, initargs=(cfg,), preload=("pipeline.audio.preload",)
            )
        )
    wall = time.perf_counter() - start
    assert len(results) == len(tracks) and all(np.isfinite(v).all() for r, _ in results for v in r.values())
    return wall, sum(cpu for _, cpu in results)


HEADER = "| {first} | audio seconds | wall seconds | x real-time | CPU seconds | x real-time per busy core |"


def row(seconds: float, wall: float, cpu: float) -> str:
    return f"{seconds:.1f} | {wall:.2f} | {seconds / wall:.0f}x | {cpu:.2f} | {seconds / cpu:.0f}x"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", type=int, default=100, help="generated 30 s tracks")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    cfg = dataclasses.replace(load_params().audio, feature_sets=tuple(audio.FEATURE_SETS.members()), sample_rate=RATE)

    warm = audio.warm_up(cfg)  # first call here: numba compile or its disk cache; one BLAS thread (all modes)
    rest = audio.warm_up(cfg)
    # the fork server's start (imports + warm-up, once per run) and the first workers, on two 0.1 s tracks
    startup, _ = timed("processes", [np.zeros(RATE // 10, np.float32)] * args.workers, cfg, args.workers)

    print(f"machine load average (1 min) before timing: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    sets = {"real clips": real_tracks(), f"generated 30 s x {args.tracks}": generated_tracks(args.tracks)}
    sets["all"] = [t for tracks in sets.values() for t in tracks]
    print(
        f"\nAudio features ({', '.join(cfg.feature_sets)}; {cfg.sample_rate} Hz), "
        f"{args.workers} worker processes, wall time includes forking the workers\n"
    )
    print(HEADER.format(first="set | n tracks"))
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, tracks in sets.items():
        seconds = sum(t.size for t in tracks) / RATE
        wall, cpu = timed("processes", tracks, cfg, args.workers)
        print(f"| {name} | {len(tracks)} | {row(seconds, wall, cpu)} |")

    generated = sets[f"generated 30 s x {args.tracks}"]
    seconds = sum(t.size for t in generated) / RATE
    print("\nParallel modes on the generated tracks\n")
    print(HEADER.format(first="mode | workers"))
    print("|---|---:|---:|---:|---:|---:|---:|")
    for mode, workers in (("in-process", 1), ("threads", args.workers), ("processes", args.workers)):
        wall, cpu = timed(mode, generated, cfg, workers)
        print(f"| {mode} | {workers} | {row(seconds, wall, cpu)} |")

    print("\nOne-time costs (not per video)\n")
    print(
        f"(machine load average, 1 min, at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs;"
        " other work on the machine shows in wall time, not in CPU seconds)\n"
    )
    print("| what | seconds |")
    print("|---|---:|")
    print(f"| first warm-up in a process (numba compile, or its on-disk cache) | {warm:.2f} |")
    print(f"| a second warm-up in the same process | {rest:.2f} |")
    print(f"| start the fork server (imports + warm-up) and {args.workers} workers | {startup:.2f} |")


if __name__ == "__main__":
    main()

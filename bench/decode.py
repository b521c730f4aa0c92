"""Decode benchmark: sampling 32 frames + mono audio vs. FFmpeg's own full decode of the file.

    python bench/decode.py [--repeats 3]

Rows: real 720p/1080p clips of >= 10 s from ../shared/data/videos when present, plus generated
H.264 clips (always). Each time is the median of --repeats runs, interleaved so machine noise hits
both columns alike. A last table decodes many videos with 1 worker and with one per core.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from pipeline.decode.ffmpeg import decode_clip, probe
from pipeline.execution.pools import bounded_map, resolve_workers

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "videos"
REAL_PICKS = ["moviepy_big_buck_bunny_0_30.webm", "moviepy_smpte-2997.mp4"]


def generate(folder: Path) -> list[Path]:
    out = []
    for w, h in ((1280, 720), (1920, 1080)):
        path = folder / f"generated_{h}p.mp4"
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
                f"testsrc2=s={w}x{h}:r=30:d=12",
                "-f",
                "lavfi",
                "-i",
                "sine=f=440:r=48000:d=12",
                "-c:v",
                "libx264",
                "-preset",
                "veryfast",
                "-g",
                "60",
                "-c:a",
                "aac",
                "-ac",
                "2",
                str(path),
            ],
            check=True,
        )
        out.append(path)
    return out


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def full_decode(path: Path) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-f", "null", "-"], check=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        clips = [REAL / n for n in REAL_PICKS if (REAL / n).exists()] + generate(Path(tmp))
        print(
            "| clip | size | seconds | ffmpeg full decode (s) | uniform 32 + audio (s) | ratio "
            "| consecutive 32 + audio (s) | ratio |"
        )
        print("|---|---|---|---|---|---|---|---|")
        for clip in clips:
            info = probe(clip)
            times = {"full": [], "uniform": [], "consecutive": []}
            for _ in range(args.repeats):
                times["full"].append(timed(functools.partial(full_decode, clip)))
                for method in ("uniform", "consecutive"):
                    run = functools.partial(decode_clip, str(clip), info, 32, method, 224, 16000)
                    times[method].append(timed(run))
            med = {k: statistics.median(v) for k, v in times.items()}
            print(
                f"| {clip.name} | {info.width}x{info.height} | {info.duration_s:.1f} | {med['full']:.3f} "
                f"| {med['uniform']:.3f} | {med['uniform'] / med['full']:.2f}x "
                f"| {med['consecutive']:.3f} | {med['consecutive'] / med['full']:.2f}x |"
            )

        many = [c for c in (sorted(REAL.glob("*.mp4")) if REAL.exists() else [])] or clips
        many = (many * 4)[:24]
        infos = {c: probe(c) for c in set(many)}
        job = lambda c: decode_clip(str(c), infos[c], 32, "uniform", 224, 16000)  # noqa: E731
        cores = resolve_workers(0)
        serial = timed(lambda: list(bounded_map(job, many, 1)))
        parallel = timed(lambda: list(bounded_map(job, many, cores)))
        print()
        print(f"| videos | 1 worker (s) | {cores} workers (s) | speed-up |")
        print("|---|---|---|---|")
        print(f"| {len(many)} | {serial:.2f} | {parallel:.2f} | {serial / parallel:.2f}x |")


if __name__ == "__main__":
    main()

"""Flow benchmark: the flow stage against a naive per-frame Python loop, on the real clips.

    python bench/flow.py [--frames 16] [--size 224] [--videos 8 32] [--workers 2]

Input: the real clips in ../shared/data/videos, decoded as the decode stage does (``--frames``
consecutive frames at ``--size`` px), repeated under new ids up to each ``--videos`` count, in a
decoded store. Rows, all Farneback (``flow.farneback`` of params.yaml) unless said:

- ``stage``: ``pipeline.flow.worker.compute_store`` (one OpenCV thread per video, ``--workers`` videos
  in parallel, each video's grey frames converted once, uint8 flow streamed into shards);
- ``naive loop``: the common script: for every video, for every frame pair, convert both frames to
  grey and call ``cv2.calcOpticalFlowFarneback`` (OpenCV's default threads), keeping every float32
  flow field in a list until the end, then saving one ``.npy`` per video.

Each configuration runs in a fresh child process, so its peak RSS (``ru_maxrss``) is its own:
"peak MB" is the memory the whole process needed. frames/s counts flow fields (T - 1 per video);
per core divides by the cores the run may use (``--workers`` for the stage, all for the loop).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from pipeline.decode.decoded import DecodedWriter, iter_decoded
from pipeline.decode.ffmpeg import MediaError, decode_clip, probe
from pipeline.decode.worker import decoded_meta
from pipeline.params import load_params

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "videos"


def build_store(root: Path, n: int, frames: int, size: int) -> int:
    """A decoded store of ``n`` videos cycling through the real clips; returns the number of distinct clips."""
    clips = []
    for path in sorted(REAL.glob("*.*")) if REAL.is_dir() else []:
        try:
            clip = decode_clip(str(path), probe(path), frames, "consecutive", size, 16000)
        except MediaError:
            continue
        clips.append(clip.frames)
    if not clips:
        sys.exit(f"no decodable clips in {REAL}")
    cfg = load_params().decode
    cfg = type(cfg)(**{**cfg.__dict__, "num_frames": frames, "size": size, "sampling": "consecutive", "shards": 4})
    writer = DecodedWriter(root, cfg.shards, decoded_meta(cfg))
    for i in range(n):
        vid = f"v{i:04d}"
        writer.add(
            {
                "video_id": vid,
                "fingerprint": hashlib.sha256(vid.encode()).hexdigest(),
                "frames": np.ascontiguousarray(clips[i % len(clips)]).tobytes(),
                "frame_indices": list(range(frames)),
                "n_unique_frames": frames,
                "padded": False,
                "has_audio": False,
                "audio": b"",
                "audio_seconds": 0.0,
                "decode_errors": 0,
                "note": "",
            }
        )
    writer.close()
    return len(clips)


def naive(root: Path, out: Path) -> int:
    f = load_params().flow.farneback
    done = 0
    for video in iter_decoded(root, audio=False):
        flows = []
        for t in range(len(video.frames) - 1):
            prev = cv2.cvtColor(video.frames[t], cv2.COLOR_RGB2GRAY)
            nxt = cv2.cvtColor(video.frames[t + 1], cv2.COLOR_RGB2GRAY)
            flows.append(
                cv2.calcOpticalFlowFarneback(
                    prev, nxt, None, f.pyr_scale, f.levels, f.winsize, f.iterations, f.poly_n, f.poly_sigma, 0
                )
            )
            done += 1
        np.save(out / f"{video.video_id}.npy", np.stack(flows))
    return done


def child(mode: str, root: Path, out: Path, workers: int, method: str) -> None:
    """One configuration in this process: prints {frames, seconds, peak_mb}."""
    start = time.perf_counter()
    if mode == "naive":
        out.mkdir(parents=True, exist_ok=True)
        frames = naive(root, out)
    else:
        from dataclasses import replace

        from pipeline.flow.worker import compute_store

        cfg = replace(load_params().flow, method=method, workers=workers)
        summary = compute_store(cfg, root, out)  # a fresh store: every row was computed now
        frames = summary.rows * (_frames(root) - 1)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(json.dumps({"frames": frames, "seconds": seconds, "peak_mb": peak}))


def _frames(root: Path) -> int:
    from pipeline.decode.decoded import read_meta

    return read_meta(root)["dims"]["frames"][0]


def run(mode: str, root: Path, out: Path, workers: int, method: str = "farneback") -> dict:
    cmd = [sys.executable, __file__, "--child", mode, str(root), str(out), str(workers), method]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    done = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--videos", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--tvl1-videos", type=int, default=1, help="TV-L1 is ~100x slower: a row on this many")
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, root, out, workers, method = args.child
        child(mode, Path(root), Path(out), int(workers), method)
        return
    cores = os.cpu_count() or 1
    print(f"{cores} cores; {args.frames} consecutive frames per video at {args.size} px; OpenCV {cv2.__version__}\n")
    print("| method | run | videos | flow frames | seconds | frames/s | frames/s per core | peak MB |")
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.videos:
            root = Path(tmp) / f"decoded{n}"
            build_store(root, n, args.frames, args.size)
            rows = [
                ("naive loop", "naive", 0, cores),
                ("stage, 1 worker", "stage", 1, 1),
                (f"stage, {args.workers} workers", "stage", args.workers, args.workers),
            ]
            for label, mode, workers, used in rows:
                got = run(mode, root, Path(tmp) / f"out-{mode}-{workers}-{n}", workers)
                rate = got["frames"] / got["seconds"]
                print(
                    f"| farneback | {label} | {n} | {got['frames']} | {got['seconds']:.1f} | {rate:.1f} | "
                    f"{rate / used:.1f} | {got['peak_mb']:.0f} |"
                )
        if args.tvl1_videos:
            root = Path(tmp) / "decoded-tvl1"
            build_store(root, args.tvl1_videos, args.frames, args.size)
            got = run("stage", root, Path(tmp) / "out-tvl1", 1, "tvl1")
            rate = got["frames"] / got["seconds"]
            print(
                f"| tvl1 | stage, 1 worker | {args.tvl1_videos} | {got['frames']} | {got['seconds']:.1f} | "
                f"{rate:.2f} | {rate:.2f} | {got['peak_mb']:.0f} |"
            )


if __name__ == "__main__":
    main()

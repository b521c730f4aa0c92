"""Benchmark the visual extractors: naive baseline vs the pipeline's paths, this machine's peaks, peak memory.

    python bench/extract.py [--videos 20] [--frames 8] [--extractors resnet152,c3d,i3d]
                            [--precisions fp32,int8] [--compiled] [--rss]

Reads ``paths.decoded`` (run ``dvc repro decode`` first) and params ``visual.*``; prints a
markdown table. For each extractor, on the same ``--videos`` decoded videos (``--frames``
frames each, taken uniformly from the decoded ones to keep the run short):
(a) naive: fp32, one video at a time, default memory format, ``torch.no_grad`` -- what common
extraction scripts do; (b) pipeline: ``Engine`` (BN folded, channels_last, inference_mode,
bf16 where native) + the batched runner with background preparation, precision from params.
``max rel diff`` is the largest per-video ||b - a|| / ||a|| against the fp32 features of (a), ``cos``
the smallest cosine similarity. ``--precisions`` runs the pipeline path once per precision (int8:
calibrated on ``visual.calibration_clips`` of the same clips, as the stage does on training clips).
The first table is this machine's matmul peak per precision (GFLOP/s; int8: GOP/s of fbgemm's
quantised linear; the best of 1024² and 2048², 3 rounds before the rows and 1 after); each path's achieved GFLOP/s (``torch.utils.flop_counter`` on one video) is
then printed as a share of the peak of its precision.
``--compiled`` adds the fp32 pipeline row with the head compiled as ``visual.compiled`` does
(``torch.compile``, inductor, frozen weights): the path for CPUs without bf16 units; ``setup s`` is the
compile time, paid once per worker.
``--rss`` runs the whole store path (``extract_store``) in a fresh process on 20 and on 200
videos (the 20 repeated under new ids, at 112 px to keep it short) and reports peak RSS.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import os
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

warnings.filterwarnings("ignore", category=FutureWarning)

from report import Report, cpu_name  # noqa: E402

from pipeline.decode import decoded  # noqa: E402
from pipeline.decode.worker import decoded_meta  # noqa: E402
from pipeline.params import DecodeConfig, load_params  # noqa: E402
from pipeline.visual import extractor as registry  # noqa: E402
from pipeline.visual import weights  # noqa: E402
from pipeline.visual.batching import Item, extract, read_shard  # noqa: E402
from pipeline.visual.clips import resize_center_crop, uniform_clip  # noqa: E402
from pipeline.visual.inference import CalibrationSet, Engine, Placement, resolve_placement  # noqa: E402
from pipeline.visual.worker import VisualWorker, calibration_set, extract_store, store_meta  # noqa: E402


def load_videos(root: str, n: int, frames: int) -> tuple[list[str], np.ndarray]:
    """First ``n`` decoded videos, ``frames`` frames each: ids and (N, T, S, S, 3) uint8."""
    shape = decoded.read_meta(root)["dims"]["frames"]
    pick = uniform_clip(shape[0], frames)[0]
    ids, clips = [], []
    for shard in sorted(set(decoded.read_index(root).column("shard").to_pylist())):
        for item in read_shard(root, shard, shape):
            if item.frames is not None and len(ids) < n:
                ids.append(item.video_id)
                clips.append(item.frames[pick])
    if len(ids) < n:
        raise SystemExit(f"only {len(ids)} decoded videos in {root}; need {n}")
    return ids, np.stack(clips)


def rel_errors(b: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Per row ||b - a|| / ||a|| (also read by bench/precision.py)."""
    return np.linalg.norm(b - a, axis=1) / np.maximum(np.linalg.norm(a, axis=1), 1e-12)


def rel_diff(b: np.ndarray, a: np.ndarray) -> float:
    return float(np.max(rel_errors(b, a)))


def min_cos(b: np.ndarray, a: np.ndarray) -> float:
    return float(np.min((a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)))


def _rate(fn, work: float, seconds: float = 2.0) -> float:
    fn()  # warm-up: packing, oneDNN primitive creation
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn()
        n += 1
    return n * work / (time.perf_counter() - start) / 1e9


def matmul_peaks(sizes: tuple[int, ...] = (1024, 2048), rounds: int = 3) -> dict[str, float]:
    """This machine's dense matmul throughput, GFLOP/s (int8: GOP/s), per precision, on torch's threads.

    The best of square sizes 1024 and 2048 (which one wins depends on the cache and the kernel) over
    ``rounds`` rounds: on a shared machine a single round can land on a busy moment. Emulated bf16 (far
    below fp32) is measured once: one 2048² product then takes tens of seconds."""
    from torch.ao.nn.quantized import Linear as QLinear

    torch.backends.quantized.engine = "x86"
    peaks: dict[str, float] = {}
    for size in sizes:
        work = 2.0 * size**3
        a = torch.randn(size, size)
        ab = a.bfloat16()
        lin = QLinear(size, size)
        lin.set_weight_bias(torch.quantize_per_tensor(a, 0.05, 0, torch.qint8), None)
        xq = torch.quantize_per_tensor(a.abs(), 0.05, 0, torch.quint8)
        paths = {"fp32": (torch.matmul, a, a), "bf16": (torch.matmul, ab, ab), "int8": (lin, xq)}
        for precision, (fn, *args) in paths.items():  # fp32 first: bf16 is compared with it
            for _ in range(rounds):
                peaks[precision] = max(peaks.get(precision, 0.0), _rate(lambda: fn(*args), work))  # noqa: B023
                if precision == "bf16" and peaks["bf16"] < 0.2 * peaks["fp32"]:
                    break  # emulated
    return peaks


def flops_per_video(ex, model, clip: np.ndarray) -> float:
    """FLOPs of the extractor's head on one video's model input (fp32 graph; the same count at any precision)."""
    from torch.utils.flop_counter import FlopCounterMode

    head = ex.head(model).eval()
    with torch.no_grad():
        x = ex.preprocess(torch.from_numpy(clip[None]))
        with FlopCounterMode(display=False) as counter:
            head(x)
    return float(counter.get_total_flops())


def bench_one(
    name: str, clips: np.ndarray, placement: Placement, batch_size: int, precisions: list[str], compiled: bool
) -> list[dict]:
    cfg = load_params().visual
    ex = registry.create(name, cfg, clips.shape[1])
    model = weights.load(ex, "random").model
    naive = Engine(ex, model, Placement(placement.device, "fp32", placement.threads), naive=True)
    naive(clips[:1])  # warm-up: allocator, oneDNN primitives
    start = time.perf_counter()
    ref = {k: np.concatenate(v) for k, v in _cat(naive(clips[i : i + 1]) for i in range(len(clips))).items()}
    t_naive = time.perf_counter() - start
    col = next(iter(ex.dims()))
    n, t = clips.shape[:2]
    flops = flops_per_video(ex, model, clips[0])
    rows = [{"name": name, "path": "naive", "precision": "fp32", "s": t_naive, "n": n, "t": t, "flops": flops}]
    paths = [(p, "pipeline") for p in precisions] + ([("fp32", "compiled")] if compiled else [])
    for precision, path in paths:
        calibration = None
        if precision == "int8":
            k = min(cfg.calibration_clips, len(clips))
            calibration = CalibrationSet(tuple(f"c{i}" for i in range(k)), clips[:k], "bench")
        start = time.perf_counter()
        fast = Engine(ex, model, dataclasses.replace(placement, precision=precision), calibration=calibration)
        if path == "compiled":
            fast.compile(np.zeros((batch_size, *clips.shape[1:]), np.uint8))
            path = "compiled" if fast.graph == "compiled" else "compiled (failed: eager)"
        t_build = time.perf_counter() - start
        fast(clips[:batch_size])  # warm-up
        items = [Item(f"v{i}", 0, False, c) for i, c in enumerate(clips)]
        start = time.perf_counter()
        results = list(extract(fast, items, batch_size))
        t_fast = time.perf_counter() - start
        got = np.stack([r.features[col] for r in results])
        rows.append(
            {
                "name": name,
                "path": path,
                "precision": fast.placement.precision,
                "s": t_fast,
                "build_s": t_build,
                "n": n,
                "t": t,
                "flops": flops,
                "diff": rel_diff(got, ref[col]),
                "cos": min_cos(got, ref[col]),
            }
        )
    return rows


def _cat(outs):
    merged: dict[str, list] = {}
    for out in outs:
        for k, v in out.items():
            merged.setdefault(k, []).append(v)
    return merged


def write_store(root: Path, clips: np.ndarray, copies: int) -> Path:
    t, s = clips.shape[1], clips.shape[2]
    cfg = DecodeConfig(
        num_frames=t,
        sampling="uniform",
        size=s,
        audio_rate=16000,
        on_corrupt="keep",
        shards=8,
        workers=1,
        max_failure_rate=0.5,
    )
    writer = decoded.DecodedWriter(root, 8, decoded_meta(cfg))
    for k in range(copies):
        for i, frames in enumerate(clips):
            vid = f"v{k:03d}_{i:02d}"
            writer.add(
                {
                    "video_id": vid,
                    "fingerprint": hashlib.sha256(vid.encode()).hexdigest(),
                    "frames": np.ascontiguousarray(frames).tobytes(),
                    "frame_indices": list(range(t)),
                    "n_unique_frames": t,
                    "padded": False,
                    "has_audio": False,
                    "audio": b"",
                    "audio_seconds": 0.0,
                    "note": "",
                }
            )
    writer.close()
    return root


def rss_child(root: str, out: str, name: str, precision: str) -> None:
    """Run the store path on ``root`` and print the peak RSS in MiB (int8: calibrated on the store's clips)."""
    cfg = load_params().visual
    cfg = cfg if precision == "params" else dataclasses.replace(cfg, precision=precision)
    placement = resolve_placement(cfg)
    ex = registry.create(name, cfg, decoded.read_meta(root)["dims"]["frames"][0])
    lw = weights.load(ex, "random")
    calibration = calibration_set(str(root), None, cfg.calibration_clips) if placement.precision == "int8" else None
    engine = Engine(ex, lw.model, placement, calibration=calibration)
    summary = extract_store(
        VisualWorker(engine, str(root), cfg.batch_size),
        out,
        store_meta(engine, lw, decoded.read_meta(root)),
    )
    print(f"{summary.rows} {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--videos", type=int, default=20)
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--extractors", default="resnet152,c3d,i3d")
    ap.add_argument("--precisions", default="params", help="comma-separated: fp32,bf16,int8; params = visual.precision")
    ap.add_argument("--compiled", action="store_true", help="add the fp32 row with visual.compiled (torch.compile)")
    ap.add_argument("--rss", action="store_true")
    ap.add_argument("--rss-extractor", default="i3d")
    ap.add_argument("--rss-precision", default="params", help="fp32, bf16, int8; params = visual.precision")
    ap.add_argument("--rss-child", nargs=2, metavar=("ROOT", "OUT"))
    args = ap.parse_args()
    if args.rss_child:
        return rss_child(*args.rss_child, args.rss_extractor, args.rss_precision)
    params = load_params()
    placement = resolve_placement(params.visual)
    precisions = [placement.precision if p == "params" else p for p in args.precisions.split(",")]
    ids, clips = load_videos(params.paths.decoded, args.videos, args.frames)
    head = (
        f"{cpu_name()}, {os.cpu_count()} cores ({torch.backends.cpu.get_cpu_capability()}); device "
        f"{placement.device}, {placement.threads} threads, torch {torch.__version__}, {len(ids)} videos x "
        f"{clips.shape[1]} frames at {clips.shape[2]} px, batch_size {params.visual.batch_size}\n"
    )
    before = matmul_peaks()
    results = {
        name: bench_one(name, clips, placement, params.visual.batch_size, precisions, args.compiled)
        for name in args.extractors.split(",")
    }
    # measured before and after the extraction rows, the best of both: a busy minute on a shared machine
    # lowers one measurement, and a peak below what the networks reach would overstate every share
    after = matmul_peaks(rounds=1)
    peaks = {p: max(before[p], after[p]) for p in before}
    report = Report()
    report.emit(head)
    report.emit("| matmul peak | fp32 | bf16 | int8 |\n|---|---|---|---|")
    report.emit(
        f"| GFLOP/s (int8: GOP/s), best of 1024² and 2048², 3 rounds before and 1 after, {placement.threads} "
        "threads | " + " | ".join(f"{peaks[p]:.0f}" for p in ("fp32", "bf16", "int8")) + " |\n"
    )
    report.emit(
        "| extractor | path | precision | frames/s | speed-up | GFLOP/s | share of peak | setup s "
        "| max rel diff vs fp32 | min cos |"
    )
    report.emit("|---|---|---|---|---|---|---|---|---|---|")
    for name, rows in results.items():
        base = rows[0]["s"]
        for r in rows:
            frames, gflops = r["n"] * r["t"], r["n"] * r["flops"] / r["s"] / 1e9
            diff = f"{r['diff']:.2e} | {r['cos']:.5f}" if "diff" in r else "- | -"
            setup = f"{r['build_s']:.1f}" if "build_s" in r else "-"
            report.emit(
                f"| {name} | {r['path']} | {r['precision']} | {frames / r['s']:.1f} | {base / r['s']:.2f}x | "
                f"{gflops:.0f} | {gflops / peaks[r['precision']]:.0%} | {setup} | {diff} |"
            )
    report.save(Path(__file__).parent / "out/extract.md")
    if args.rss:
        x = torch.from_numpy(clips).flatten(0, 1).permute(0, 3, 1, 2).float()  # (N*T, C, H, W)
        x = resize_center_crop(x, 112, 112).round().clamp(0, 255).to(torch.uint8)
        clips112 = x.permute(0, 2, 3, 1).reshape(len(ids), clips.shape[1], 112, 112, 3).numpy()
        print(f"\n| peak RSS ({args.rss_extractor}, {args.rss_precision}, whole store path, 112 px) | videos | MiB |")
        print("|---|---|---|")
        with tempfile.TemporaryDirectory(prefix="bench-visual-") as tmp:
            for copies in (1, 10):
                root = write_store(Path(tmp) / f"dec{copies}", clips112, copies)
                cmd = [
                    sys.executable,
                    __file__,
                    "--rss-child",
                    str(root),
                    str(Path(tmp) / f"out{copies}"),
                    "--rss-extractor",
                    args.rss_extractor,
                    "--rss-precision",
                    args.rss_precision,
                ]
                rows, mib = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.split()[-2:]
                print(f"| {args.rss_extractor} | {rows} | {mib} |", flush=True)


if __name__ == "__main__":
    main()

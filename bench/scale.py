"""Benchmark incremental runs: a full ``dvc repro`` vs. re-runs after adding 1% and after no change.

    python bench/scale.py [--videos 200] [--added 0.01] [--executors]

Renders ``--videos`` short synthetic clips (``pipeline.sample``) into ``bench/out/scale/corpus``,
copies the project to ``bench/out/scale/project`` with a light config (decode 8 frames of 64 px,
16 shards; visual@resnet152 on 2 frames; audio with every feature set) and times, in one run:
(a) ``dvc repro audio visual@resnet152`` from nothing (ingest, decode, visual, audio);
(b) the same after adding ``--added`` of the corpus as new videos;
(c) the same with nothing changed (DVC skips every stage);
(d) every stage run by hand with nothing changed: the fixed cost of a run (process start, imports,
    model load, librosa warm-up, planning), which (b) pays on top of its few videos.
Prints a markdown table: step, videos computed per stage, wall seconds and share of (a), and the
stages' own computing + writing seconds (from their logs) and share of (a)'s.
``--executors`` then times each stage by hand from empty stores with ``executor.kind: local`` and ``ray``
(a local Ray ray_session per stage process, as ``dvc repro`` would start; its start-up is reported apart).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.execution.pools import bounded_map  # noqa: E402
from pipeline.params import SampleConfig, load_params  # noqa: E402
from pipeline.sample import plan_videos, render_video  # noqa: E402
from tests.stages.project import Project  # noqa: E402

OUT = ROOT / "bench" / "out" / "scale"
TARGETS = ("audio", "visual@resnet152")
CONFIG = {
    "decode": {"num_frames": 8, "size": 64, "shards": 16},
    "visual": {"extractors": ["resnet152"], "precision": "fp32", "resnet152": {"num_frames": 2}},
}
# the stages' closing log lines: videos computed and seconds spent computing + writing them
COMPUTED = {
    "decode": r"\((\d+) decoded now in ([\d.]+) s",
    "visual": r"resnet152: .*\((\d+) computed now in ([\d.]+) s",
    "audio": r"audio features: .*\((\d+) computed now in ([\d.]+) s",
}


def render(folder: Path, n: int, seed: int, prefix: str) -> list[Path]:
    cfg = SampleConfig(
        seed=seed,
        n_videos=n,
        min_seconds=1.0,
        max_seconds=3.0,
        short_seconds=0.4,
        no_audio_fraction=0.1,
        sizes=((160, 120), (120, 160), (176, 144)),
        fps=(15.0, 25.0),
        audio_rates=(16000, 22050),
        n_users=5,
        impressions_per_user=1,
        clips=4,
        clip_tint=False,
    )
    folder.mkdir(parents=True, exist_ok=True)
    specs = plan_videos(cfg)
    paths = [folder / f"{prefix}{s.video_id}.mp4" for s in specs]
    list(bounded_map(lambda job: render_video(*job), zip(specs, paths), workers=2))
    return paths


def timed(project: Project, *args: str) -> tuple[float, dict[str, tuple[int, float]], str]:
    start = time.perf_counter()
    done = project.run(*args)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    log = done.stdout + done.stderr
    counts = {
        stage: (int(m.group(1)), float(m.group(2)))
        for stage, pattern in COMPUTED.items()
        if (m := re.search(pattern, log))
    }
    return seconds, counts, log


def by_hand(project: Project) -> tuple[float, dict[str, tuple[int, float]]]:
    total, counts = 0.0, {}
    for stage in (
        ["-m", "stages.ingest"],
        ["-m", "stages.decode"],
        ["-m", "stages.visual", "resnet152"],
        ["-m", "stages.audio"],
    ):
        seconds, got, _ = timed(project, *stage)
        total += seconds
        counts |= got
    return total, counts


STAGES = (
    ("decode", ["-m", "stages.decode"]),
    ("visual@resnet152", ["-m", "stages.visual", "resnet152"]),
    ("audio", ["-m", "stages.audio"]),
)
STARTUP = (
    "import time; from pipeline.params import load_params; from pipeline.execution.ray_executor import ray_session\n"
    "start = time.perf_counter()\nwith ray_session(load_params().executor): pass\n"
    "print(time.perf_counter() - start)"
)


def executor_rows(project: Project) -> list[str]:
    """``executor.kind`` local vs ray on the same corpus, each stage by hand from empty stores (decode first)."""
    paths = load_params(project.root / "params.yaml").paths
    stores = (
        paths.decoded,
        f"{paths.visual_features}/visual_resnet152.parquet",
        f"{paths.visual_features}/visual_resnet152_failures.parquet",
        paths.audio_features,
        paths.audio_failures,
    )
    seconds: dict[str, dict[str, float]] = {}
    for kind in ("local", "ray"):
        project.set_params({"executor": {"kind": kind}})
        for rel in stores:  # from scratch: an incremental run would reuse the other kind's shards
            target = project.root / rel
            shutil.rmtree(target) if target.is_dir() else target.unlink(missing_ok=True)
        for stage, args in STAGES:
            wall, counts, _ = timed(project, *args)
            seconds.setdefault(stage, {})[kind] = wall
            assert sum(n for n, _ in counts.values()) > 0, f"{stage} computed nothing on {kind}"
    done = project.run("python", "-c", STARTUP)
    startup = float(done.stdout.split()[-1]) if done.returncode == 0 else float("nan")
    seconds["all three"] = {k: sum(got[k] for got in seconds.values()) for k in ("local", "ray")}
    rows = [
        "",
        "| stage (by hand, from empty stores) | local s | ray s | ratio ray / local | ray s - start-up | ratio |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for stage, got in seconds.items():
        warm = got["ray"] - startup * (len(STAGES) if stage == "all three" else 1)
        rows.append(
            f"| {stage} | {got['local']:.1f} | {got['ray']:.1f} | {got['ray'] / got['local']:.2f} | "
            f"{warm:.1f} | {warm / got['local']:.2f} |"
        )
    load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    rows += [
        "",
        f"Ray local ray_session start-up (ray.init + shutdown), paid by each ray stage process: {startup:.1f} s; "
        f"load average (1/5/15 min) after the runs: {load}",
    ]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=200)
    parser.add_argument("--added", type=float, default=0.01, help="fraction of --videos added in step (b)")
    parser.add_argument("--executors", action="store_true", help="also compare executor kinds (local vs ray)")
    args = parser.parse_args()
    shutil.rmtree(OUT, ignore_errors=True)
    corpus = OUT / "corpus"
    render(corpus, args.videos, seed=11, prefix="a_")
    n_extra = max(1, round(args.added * args.videos))
    extra = render(OUT / "extra", max(4, n_extra), seed=12, prefix="b_")[:n_extra]  # the generator makes >= 4
    project = Project(_fresh(OUT / "project"), {"data": {"input": str(corpus)}, **CONFIG})

    rows = []
    full, counts, _ = timed(project, "dvc", "repro", *TARGETS)
    rows.append(("(a) full run", counts, full))
    for path in extra:
        shutil.copy2(path, corpus / path.name)
    seconds, counts, _ = timed(project, "dvc", "repro", *TARGETS)
    rows.append((f"(b) re-run after adding {len(extra)} videos ({len(extra) / args.videos:.0%})", counts, seconds))
    seconds, counts, log = timed(project, "dvc", "repro", *TARGETS)
    assert "Data and pipelines are up to date" in log, log
    rows.append(("(c) re-run, nothing changed (dvc repro)", counts, seconds))
    seconds, counts = by_hand(project)
    rows.append(("(d) every stage by hand, nothing changed (fixed cost)", counts, seconds))

    print(
        f"\n{args.videos} + {len(extra)} synthetic clips (1-3 s); decode {CONFIG['decode']}, visual@resnet152 on "
        "2 frames, audio mfcc+logmel_segments+pyaa; executor: local\n"
    )
    full_work = sum(s for _, s in rows[0][1].values())
    print("| step | videos computed (decode / visual / audio) | seconds | share of full | work seconds | work share |")
    print("|---|---|---:|---:|---:|---:|")
    for name, got, secs in rows:
        computed = " / ".join(str(got.get(k, (0, 0.0))[0]) for k in ("decode", "visual", "audio"))
        work = sum(s for _, s in got.values())
        print(f"| {name} | {computed} | {secs:.1f} | {secs / full:.1%} | {work:.1f} | {work / full_work:.1%} |")
    print(
        "\nseconds: wall clock of the step; work seconds: the stages' own time computing and writing "
        "(from their logs), i.e. without process start-up, imports, model load and DVC"
    )
    if args.executors:
        for line in executor_rows(project):
            print(line)


def _fresh(path: Path) -> Path:
    path.mkdir(parents=True)
    return path


if __name__ == "__main__":
    main()

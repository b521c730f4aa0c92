"""Does FRAME's clip level earn its place? ``frame`` vs ``din``, ``mmie``, ``sdin``, mean ± std over seeds, on
the sample log with its watch times (``sample.plan_watch``: users leave at the first clip that bores them,
driven by a hidden per-clip tint).

No video is rendered: each clip's vector is a noisy one-hot of its tint, standing in for the visual features
of a corpus rendered with ``sample.clip_tint: true`` (the grey clips desaturated). Rows beyond the models:
``frame, shuffled clips`` (each video's clip vectors permuted across its clips: a control whose clip AUC
should sit near 0.5) and ``frame, clip_weight 0`` (no clip-level loss). Through the stages' own code:
``ctr_data``'s samples (``ctr_data.*``, side features emptied) and ``ctr_train``'s experiment (``ctr.*``,
content off, model and seed replaced). Columns: validation AUC, test video AUC, test clip-level skip AUC
(watched-through clips vs the clip left at), epochs run, seconds per run.

    python bench/ctr_frame.py [--seeds 0 1 2] [--quick] [--epochs N]
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from report import Report, cpu_name, run_seeds, seed_cells, usable_cores

from pipeline.ctr import clips
from pipeline.ctr.build import build_samples, write_built
from pipeline.ctr.experiment import load_dataset, run
from pipeline.datasets import read_source
from pipeline.params import CtrFeatures, load_params
from pipeline.sample import clip_tints, plan_interactions, plan_videos, plan_watch, write_csv

REPORT = Report()
emit = REPORT.emit
HEADER = ["user_id", "video_id", "timestamp", "label", "watch_time", "duration"]
ROWS = (  # label, model, dataset, ctr.frame replaced
    ("din", "din", "aligned", {}),
    ("mmie", "mmie", "aligned", {}),
    ("sdin", "sdin", "aligned", {}),
    ("frame", "frame", "aligned", {}),
    ("frame, shuffled clips", "frame", "shuffled", {}),
    ("frame, clip_weight 0", "frame", "aligned", {"clip_weight": 0.0}),
)


def datasets(params, quick: bool) -> dict[str, object]:
    """The sample log through ctr_data, with tint-aligned and shuffled clip vectors (two ctr_data folders)."""
    cfg = params.sample if not quick else dataclasses.replace(params.sample, n_users=120, impressions_per_user=30)
    specs = plan_videos(cfg)
    folder = Path(tempfile.mkdtemp(prefix="ctr_frame_"))
    write_csv(folder / "interactions.csv", HEADER, plan_watch(cfg, specs, list(plan_interactions(cfg, specs))))
    data_cfg = dataclasses.replace(
        params.ctr_data, source="log", path=str(folder / "interactions.csv"), features=CtrFeatures((), (), ())
    )
    built = build_samples(read_source("log", data_cfg.path, data_cfg.label), data_cfg)
    rng = np.random.default_rng(0)
    tints = clip_tints(cfg)
    x = np.eye(2, dtype=np.float32)[tints] + rng.normal(0, 0.3, (*tints.shape, 2)).astype(np.float32)
    out = {}
    for name, vectors in (("aligned", x), ("shuffled", np.stack([v[rng.permutation(len(v))] for v in x]))):
        where = folder / name
        write_built(built, where, {"ctr_data": data_cfg})
        table = clips.clip_table([s.video_id for s in specs], vectors, np.ones(len(specs), bool))
        clips.write_clips(table, folder / f"{name}_clips.parquet", "log_data", (cfg.clips, 2), {})
        aligned = clips.align_to_codes(folder / f"{name}_clips.parquet", built.items)
        clips.write_clips(aligned, where / clips.CLIPS, "ctr_data", (cfg.clips, 2), {})
        out[name] = load_dataset(where)
    s = built.summary
    emit(
        f"\n**sample log** ({cfg.n_users} users x {cfg.impressions_per_user} impressions, {cfg.clips} clips): "
        f"train {s['train_samples']} / valid {s['valid_samples']} / test {s['test_samples']} samples; "
        f"watch times missing {s['watch_time_missing']}, clipped {s['watch_time_clipped']}\n"
    )
    return out


def compare(data, params, seeds: list[int], epochs: int) -> None:
    emit("| model | valid AUC | test AUC | clip AUC | epochs | s/run |")
    emit("|---|---|---|---|---|---|")
    for label, model, which, change in ROWS:
        frame = dataclasses.replace(params.ctr.frame, **change)
        runs, seconds = run_seeds(
            lambda seed, model=model, which=which, frame=frame: run(
                dataclasses.replace(params.ctr, model=model, use_content=False, seed=seed, epochs=epochs, frame=frame),
                data[which],
            )[1],
            seeds,
        )
        cells = seed_cells(runs, seconds, ("auc", "clip_auc"))
        emit(f"| {label} | " + " | ".join(cells) + " |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--quick", action="store_true", help="a smoke run: 10 epochs, a smaller log")
    ap.add_argument("--epochs", type=int, default=None, help="cap on epochs (default ctr.epochs)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    params = load_params()
    torch.set_num_threads(params.ctr.threads or 1)
    epochs = args.epochs or (10 if args.quick else params.ctr.epochs)
    emit(
        f"machine: {cpu_name()}, {usable_cores()} cores usable, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads); load {os.getloadavg()[0]:.1f}; seeds {args.seeds}, epochs <= {epochs}"
    )
    compare(datasets(params, args.quick), params, args.seeds, epochs)
    emit(f"\nload average at the end: {os.getloadavg()[0]:.1f}")
    REPORT.save(f"bench/out/ctr_frame{'_quick' if args.quick else ''}.md")


if __name__ == "__main__":
    main()

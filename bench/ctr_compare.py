"""Comparison table: every CTR model with and without content, mean +- std over seeds.

Calls the stage's experiment runner directly (one process, tables loaded once) on the ctr_data
output of the current params (``paths.ctr_data``, ``paths.items``): run ``dvc repro ctr_data`` (and
the feature stages) first. Prints a markdown table (also written to bench/out/ctr_compare.md).

    python bench/ctr_compare.py [--seeds 0 1 2] [--models lr fm deepfm din amfr mmie]
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import time
from pathlib import Path

import numpy as np
import torch

from models.ctr import MODELS
from pipeline.core.params import load_params
from pipeline.ctr.experiment import load_dataset, run

COLUMNS = ("auc", "gauc", "logloss", "cold_auc")


def fmt(values: list[float | None]) -> str:
    v = np.array([np.nan if x is None else x for x in values], float)
    return "n/a" if np.isnan(v).all() else f"{np.nanmean(v):.3f} ± {np.nanstd(v):.3f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--models", nargs="+", default=MODELS.names())
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    params = load_params()
    if params.ctr.threads:
        torch.set_num_threads(params.ctr.threads)
    data = load_dataset(params.paths.ctr_data)
    test = data.tables["test"]
    lines = [
        f"Sample: {data.tables['train'].num_rows} train / {test.num_rows} test samples "
        f"({int(np.sum(test['cold'].to_numpy(zero_copy_only=False)))} cold-start), content {list(params.ctr.content)}, "
        f"seeds {args.seeds}, other params from params.yaml (ctr.*).",
        "",
        "| model | content | test AUC | GAUC | logloss | cold-start AUC | epochs | s/run |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in args.models:
        for content in (False, True):
            runs, t0 = [], time.perf_counter()
            for seed in args.seeds:
                cfg = dataclasses.replace(params.ctr, model=name, use_content=content, seed=seed)
                runs.append(run(cfg, data, params.paths.items)[1])
            secs = (time.perf_counter() - t0) / len(args.seeds)
            cells = [fmt([r[c] for r in runs]) for c in COLUMNS]
            epochs = np.mean([r["epochs_run"] for r in runs])
            lines.append(
                f"| {name} | {'yes' if content else 'no'} | " + " | ".join(cells) + f" | {epochs:.1f} | {secs:.1f} |"
            )
            print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    out = Path("bench/out/ctr_compare.md")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print("\n" + text)


if __name__ == "__main__":
    main()

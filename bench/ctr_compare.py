"""Comparison table: every CTR model with and without content, mean +- std over seeds.

Calls the stage's experiment runner directly (one process, tables loaded once) on the ctr_data
output of the current params (``paths.ctr_data``, ``paths.items``): run ``dvc repro ctr_data`` (and
the feature stages) first. Prints a markdown table (also written to bench/out/ctr_compare.md), then
test AUC per history-length group (the MMIE paper's: <= 10, 11-15, ..., > 35 earlier positives) for
the models in ``--by-history`` (default mmie and sdin).

    python bench/ctr_compare.py [--seeds 0 1 2] [--models lr fm deepfm din amfr mmie sdin] [--by-history mmie sdin]
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import time
from pathlib import Path

import numpy as np
import torch
from report import fmt

from models.ctr import MODELS
from pipeline.ctr.experiment import load_dataset, run
from pipeline.ctr.metrics import HISTORY_GROUPS
from pipeline.params import load_params

COLUMNS = ("auc", "gauc", "logloss", "cold_auc")


def history_table(runs: dict[tuple[str, bool], list[dict]], test) -> list[str]:
    """Markdown rows: test AUC per history-length group (mean +- std over seeds), the sample count first."""
    labels = [g[0] for g in HISTORY_GROUPS]
    first = next(iter(runs.values()))[0]
    total = test["hist_total"].to_numpy(zero_copy_only=False)
    out = [
        "",
        f"Test AUC by history length (earlier positives of the sample's user; mean {total.mean():.1f}, "
        f"max {int(total.max(initial=0))}; ctr_data.history keeps the last {test.schema.field('hist').type.list_size}):",
        "",
        "| model | content | " + " | ".join(labels) + " |",
        "|---|---|" + "---|" * len(labels),
        "| samples | | " + " | ".join(str(first[g]["samples"]) for g in labels) + " |",
    ]
    for (name, content), seeds in runs.items():
        cells = [fmt([s[g]["auc"] for s in seeds], 3) for g in labels]
        out.append(f"| {name} | {'yes' if content else 'no'} | " + " | ".join(cells) + " |")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--models", nargs="+", default=MODELS.names())
    ap.add_argument("--by-history", nargs="*", default=["mmie", "sdin"], help="models of the history-length table")
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
    by_history: dict[tuple[str, bool], list[dict]] = {}
    for name in args.models:
        for content in (False, True):
            runs, t0 = [], time.perf_counter()
            for seed in args.seeds:
                cfg = dataclasses.replace(params.ctr, model=name, use_content=content, seed=seed)
                runs.append(run(cfg, data)[1])
            secs = (time.perf_counter() - t0) / len(args.seeds)
            cells = [fmt([r[c] for r in runs], 3) for c in COLUMNS]
            epochs = np.mean([r["epochs_run"] for r in runs])
            lines.append(
                f"| {name} | {'yes' if content else 'no'} | " + " | ".join(cells) + f" | {epochs:.1f} | {secs:.1f} |"
            )
            print(lines[-1], flush=True)
            if name in args.by_history:
                by_history[name, content] = [r["history_auc"] for r in runs]
    if by_history:
        lines += history_table(by_history, test)
    text = "\n".join(lines) + "\n"
    out = Path("bench/out/ctr_compare.md")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print("\n" + text)


if __name__ == "__main__":
    main()

"""What ranking new (cold) items costs: each content model trained once, its cold placement fitted on
validation at several ``rec.cold_budget`` values, test Recall@20 overall and on the cold slice for each,
and first with the cold items never ranked (the warm ranking alone: what any placement is measured against).

The placement is fitted after training (``pipeline.rec.train.calibrate_cold``), so one training serves
every budget. Dataset: the synthetic profile named (``rec_sample`` params), as ``bench/rec.py``.

    python bench/rec_cold_budget.py [--profile realistic] [--models freedom mmgcn] [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os

import numpy as np
import torch
from rec import load, machine
from report import Report

from pipeline.params import load_params
from pipeline.rec.train import calibrate_cold, fit, rank

BUDGETS = (0.0, 0.005, 0.01, 0.02, 0.05, 0.1)
UNRANKED = (1.0, float("-inf"), 0.0)  # the placement that never ranks a cold item: what the warm ranking alone gives
REPORT = Report()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="realistic", choices=("realistic", "easy"))
    ap.add_argument("--models", nargs="+", default=["vbpr", "mmgcn", "metammf", "metammf_cp", "freedom", "lgmrec"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    params = load_params()
    torch.set_num_threads(params.rec.threads or torch.get_num_threads())
    REPORT.emit(f"machine: {machine()}; load average {os.getloadavg()[0]:.1f} at the start")
    name, data = load(args.profile, params)
    REPORT.emit(
        f"\n{name} profile, seeds {args.seeds} (mean); validation Recall@20 overall, then test Recall@20 overall / "
        "on the cold slice, per rec.cold_budget\n"
    )
    REPORT.emit("| model | cold unranked | " + " | ".join(f"budget {b}" for b in BUDGETS) + " |")
    REPORT.emit("|---|---|" + "---|" * len(BUDGETS))
    for model in args.models:
        runs = []  # per seed, per budget: (valid, test, test cold)
        for seed in args.seeds:
            result = fit(dataclasses.replace(params.rec, model=model, seed=seed), data)
            row = []
            for budget in (None, *BUDGETS):
                if budget is None:
                    result.model.cold_affine.copy_(torch.tensor(UNRANKED))
                else:
                    calibrate_cold(result.model, data, params.rec.eval_batch, budget)
                v = rank(result.model, data, 1, ks=(20,))["recall@20"]
                m = rank(result.model, data, 2, ks=(20,), cold=True)
                row.append((v, m["recall@20"], m["cold/recall@20"]))
            runs.append(row)
        mean = np.mean(np.array(runs, float), axis=0)  # (1 + budgets, 3)
        REPORT.emit(f"| {model} | " + " | ".join(f"{v:.4f}; {t:.4f} / {c:.4f}" for v, t, c in mean) + " |")
    REPORT.save(f"bench/out/rec_cold_budget_{args.profile}.md")


if __name__ == "__main__":
    main()

"""Top-K comparison table and full-ranking speed: every registered model, mean ± std over seeds.

Datasets: the built-in synthetic one (``rec_sample`` params, generated in a temp folder), and any
dataset an adapter reads (``--dataset NAME=SOURCE:PATH``, e.g. ``ml100k=movielens:/data/ml-100k`` with
``--split`` for sources without a given split; MovieLens is implicit at rating >= 4). Each run is the
stage's own code (``pipeline.rec.train.fit`` + ``final_metrics``) with ``rec.*`` from params.yaml, the
model and seed replaced (``--epochs`` caps the epochs). ``--eval-only`` times the full-ranking
evaluation of ``--eval-users`` x ``--eval-items`` (random 64-d embeddings, 20 masked training positives
and 5 test positives per user). Prints markdown tables and the machine.

    python bench/rec.py [--models bpr_mf vbpr] [--seeds 0 1 2] [--epochs 30] [--dataset ml100k=movielens:DIR]
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import tempfile
import time

import numpy as np
import torch
from report import Report, cpu_name, fmt, usable_cores

from models.rec import MODELS
from pipeline.datasets import read_source
from pipeline.params import load_params
from pipeline.rec import data as rec_data
from pipeline.rec import synthetic
from pipeline.rec.metrics import Pairs, evaluate
from pipeline.rec.train import final_metrics, fit, valid_metrics

PROFILES = ("realistic", "easy")  # the synthetic dataset's profiles (rec_sample.profile)
REPORT = Report()  # printed as it goes, written to bench/out/rec.md at the end
emit = REPORT.emit


def machine() -> str:
    cpu, cores = cpu_name(), usable_cores()
    gpu = f", GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ""
    return f"{cpu}, {cores} cores usable, torch {torch.__version__} ({torch.get_num_threads()} threads){gpu}"


def load(spec: str, params) -> tuple[str, rec_data.RecData]:
    name, _, where = spec.partition("=")
    cfg = params.rec_data
    if name in PROFILES:
        folder = tempfile.mkdtemp(prefix="rec_bench_")
        sample = dataclasses.replace(params.rec_sample, profile=name)
        synthetic.write(synthetic.generate(sample), folder, sample.name)
        source, path = "mmrec", folder
    else:
        source, _, path = where.partition(":")
    cfg = dataclasses.replace(cfg, source=source, path=path)
    return name, rec_data.build(read_source(source, path, cfg.label), cfg)[0]


def compare(
    name, data: rec_data.RecData, models: list[str], seeds: list[int], epochs: int | None, lr: float | None, params
):
    s = data.summary
    emit(
        f"\n{name}: {data.n_users} users x {data.n_items} items; train {s['train_interactions']} / valid "
        f"{s['valid_interactions']} / test {s['test_interactions']} ({s['test_cold_interactions']} test on "
        f"{s['cold_items']} cold items); seeds {seeds}; rec.* from params.yaml (null lr / reg / dropout / mlp: each "
        f"model's default) with epochs <= {epochs or params.rec.epochs}" + (f", lr {lr}" if lr else "") + "\n"
    )
    emit(
        "| model | valid recall@20 | recall@20 | ndcg@20 | cold recall@20 | cold ndcg@20 | epochs | s/epoch | eval s |"
    )
    emit("|---|---|---|---|---|---|---|---|---|")
    for model in models:
        runs = []
        for seed in seeds:
            cfg = dataclasses.replace(
                params.rec, model=model, seed=seed, epochs=epochs or params.rec.epochs, lr=lr or params.rec.lr
            )
            result = fit(cfg, data)
            runs.append(final_metrics(result.model, data, cfg.eval_batch) | {"spe": result.seconds_per_epoch})
            runs[-1] |= {
                "epochs": result.epochs,
                "valid": valid_metrics(result.model, data, cfg.eval_batch)["recall@20"],
            }
        cells = [fmt([r["valid"] for r in runs])]
        cells += [fmt([r[k] for r in runs]) for k in ("recall@20", "ndcg@20")]
        cells += [fmt([r["cold"].get(k) for r in runs]) for k in ("recall@20", "ndcg@20")]
        spe = np.mean([r["spe"] for r in runs])
        cells += [f"{np.mean([r['epochs'] for r in runs]):.0f}", f"{spe:.2f}" if spe else "-"]
        cells.append(f"{np.mean([r['eval_seconds'] for r in runs]):.2f}")
        emit(f"| {model} | " + " | ".join(cells) + " |")


def eval_speed(n_users: int, n_items: int, repeats: int = 3) -> float:
    rng = np.random.default_rng(0)
    u, i = torch.randn(n_users, 64), torch.randn(n_items, 64)
    users = np.repeat(np.arange(n_users), 25)
    items = rng.integers(0, n_items, len(users))
    train = Pairs.of(users[::25].repeat(20), items.reshape(n_users, 25)[:, :20].reshape(-1), n_users)
    test = Pairs.of(np.repeat(np.arange(n_users), 5), items.reshape(n_users, 25)[:, 20:].reshape(-1), n_users)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        evaluate(lambda b: u[b] @ i.T, test, [train], n_items, batch=1024)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=MODELS.names())
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--epochs", type=int, default=None, help="cap on epochs (default rec.epochs)")
    ap.add_argument("--lr", type=float, default=None, help="learning rate (default rec.lr)")
    ap.add_argument("--dataset", nargs="+", default=list(PROFILES), help="realistic | easy | NAME=SOURCE:PATH")
    ap.add_argument("--eval-users", type=int, default=10_000)
    ap.add_argument("--eval-items", type=int, default=10_000)
    ap.add_argument("--eval-only", action="store_true")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: rec.threads)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    params = load_params()
    torch.set_num_threads(args.threads or params.rec.threads or torch.get_num_threads())
    emit(f"machine: {machine()}; load average {os.getloadavg()[0]:.1f} at the start")
    seconds = eval_speed(args.eval_users, args.eval_items)
    emit(
        f"\nfull-ranking evaluation, {args.eval_users} users x {args.eval_items} items, K = 10/20/50, "
        f"4 metrics: {seconds:.2f} s (best of 3)"
    )
    if not args.eval_only:
        for spec in args.dataset:
            name, data = load(spec, params)
            compare(name, data, args.models, args.seeds, args.epochs, args.lr, params)
    emit(f"\nload average at the end: {os.getloadavg()[0]:.1f}")
    REPORT.save("bench/out/rec.md")


if __name__ == "__main__":
    main()

"""Does DMR's future earn its place? ``din``, ``mmie``, ``sdin``, ``dmr`` and dmr's three ablations (no future
sequence, one trend, no time attention), mean ± std over seeds, on

(a) the sample log: the ``sample`` stage's planned interactions (params ``sample``; no video is rendered,
    so IDs only, no content), read as a log file by the ``log`` adapter;
(b) MovieLens-100K-format data: ``--movielens DIR`` (a real ml-100k folder, or its ``u1.base`` for the fixed
    split), by default a planted one written in that format: user communities whose fashionable genre
    changes every month, so what similar users took lately foretells a user's next clicks.

Through the stages' own code: ``ctr_data``'s samples (``ctr_data.*`` from params.yaml, side features
emptied for the log), then ``ctr_train``'s experiment (``ctr.*`` from params.yaml, content off, model,
seed and ``ctr.trends`` ablation replaced). Columns: validation AUC (what a sweep chooses on), test AUC,
test logloss, epochs run, seconds per run.

    python bench/ctr_dmr.py [--seeds 0 1 2] [--quick] [--movielens DIR] [--epochs N]
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

from pipeline.ctr.build import build_samples, write_built
from pipeline.ctr.experiment import load_dataset, run
from pipeline.ctr.train import trend_tensors
from pipeline.datasets import read_source
from pipeline.params import CtrFeatures, load_params
from pipeline.sample import plan_interactions, plan_videos, write_csv

REPORT = Report()
emit = REPORT.emit
MODELS = ("din", "mmie", "sdin", "dmr")
ABLATIONS = {  # row label -> ctr.trends replaced
    "dmr, no future": {"use_future": False},
    "dmr, one trend": {"count": 1},
    "dmr, no time attention": {"time_attention": False},
}
ML_FEATURES = CtrFeatures(("gender", "occupation"), ("genres",), ("age", "year"))


def sample_log(params) -> tuple[str, str]:
    """The sample stage's interactions as a log file (no videos): (source, path)."""
    path = Path(tempfile.mkdtemp(prefix="ctr_dmr_log_")) / "interactions.csv"
    cfg = params.sample
    write_csv(path, ["user_id", "video_id", "timestamp", "label"], plan_interactions(cfg, plan_videos(cfg)))
    return "log", str(path)


def planted_ml100k(folder: Path, seed: int, n_users: int, n_items: int, per_user: int) -> str:
    """``u.data``/``u.user``/``u.item`` where a rating is high when the movie has its user community's
    genre of the month (8 communities, a new genre each 30 days), plus user and movie biases and noise."""
    rng = np.random.default_rng(seed)
    n_genres, months, day = 19, 6, 86400
    genres = rng.random((n_items, n_genres)) < 0.1
    genres[np.arange(n_items), rng.integers(0, n_genres, n_items)] = True
    community = rng.integers(0, 8, n_users)
    fashion = rng.integers(0, n_genres, (8, months))  # (community, month) -> genre
    items = np.argsort(rng.random((n_users, n_items)), axis=1)[:, :per_user]  # (U, P) without replacement
    users = np.repeat(np.arange(n_users), per_user)
    when = rng.integers(0, months * 30 * day, users.size)
    hit = genres[items.ravel(), fashion[community[users], when // (30 * day)]]
    score = 2.2 * hit - 0.8 + rng.normal(0, 0.4, n_users)[users] + rng.normal(0, 0.4, n_items)[items.ravel()]
    rating = np.clip(np.round(3 + score + rng.normal(0, 0.6, users.size)), 1, 5).astype(int)
    folder.mkdir(parents=True, exist_ok=True)
    lines = (f"{u + 1}\t{i + 1}\t{r}\t{880_000_000 + t}" for u, i, r, t in zip(users, items.ravel(), rating, when))
    (folder / "u.data").write_text("\n".join(lines) + "\n")
    jobs = ["other", "writer", "student", "artist"]
    (folder / "u.user").write_text(
        "".join(f"{u}|{rng.integers(18, 70)}|{'MF'[u % 2]}|{jobs[u % 4]}|0{u}\n" for u in range(1, n_users + 1))
    )
    flags = ["|".join(str(int(f)) for f in row) for row in genres]
    (folder / "u.item").write_text(
        "".join(f"{i + 1}|Movie {i + 1} (1995)|01-Jan-{1980 + i % 20}||http://x|{flags[i]}\n" for i in range(n_items))
    )
    return str(folder)


def dataset(name: str, source: str, path: str, features: CtrFeatures, params):
    cfg = dataclasses.replace(params.ctr_data, source=source, path=path, features=features)
    built = build_samples(read_source(source, path, cfg.label), cfg)
    out = tempfile.mkdtemp(prefix=f"ctr_dmr_{name}_")
    write_built(built, out, {"ctr_data": cfg})
    data = load_dataset(out)
    test = trend_tensors(data.tables, params.ctr.trends, data.spec)["test"]
    s = built.summary
    emit(
        f"\n**{name}** ({source}: {path}): train {s['train_samples']} / valid {s['valid_samples']} / test "
        f"{s['test_samples']} samples, {s['users']} users x {s['items']} items, mean history "
        f"{s['mean_history']:.1f}; test samples with a future sequence: {float((test['fut'] > 0).any(1).float().mean()):.0%} "
        f"(ctr.trends: {params.ctr.trends.neighbours} neighbours, {params.ctr.trends.future} long)\n"
    )
    return data


def compare(data, params, seeds: list[int], epochs: int) -> None:
    emit("| model | valid AUC | test AUC | logloss | epochs | s/run |")
    emit("|---|---|---|---|---|---|")
    rows = [(m, m, {}) for m in MODELS] + [(label, "dmr", change) for label, change in ABLATIONS.items()]
    for label, model, change in rows:
        trends = dataclasses.replace(params.ctr.trends, **change)
        runs, seconds = run_seeds(
            lambda seed, model=model, trends=trends: run(
                dataclasses.replace(
                    params.ctr, model=model, use_content=False, seed=seed, epochs=epochs, trends=trends
                ),
                data,
            )[1],
            seeds,
        )
        cells = seed_cells(runs, seconds, ("auc", "logloss"))
        emit(f"| {label} | " + " | ".join(cells) + " |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--quick", action="store_true", help="a smoke run: 2 epochs, a small MovieLens-format set")
    ap.add_argument("--movielens", default=None, help="an ml-100k folder or <folder>/u1.base (default: planted)")
    ap.add_argument("--epochs", type=int, default=None, help="cap on epochs (default ctr.epochs)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    params = load_params()
    torch.set_num_threads(params.ctr.threads or 1)
    epochs = args.epochs or (2 if args.quick else params.ctr.epochs)
    emit(
        f"machine: {cpu_name()}, {usable_cores()} cores usable, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads); load {os.getloadavg()[0]:.1f}; seeds {args.seeds}, epochs <= {epochs}"
    )
    log_source, log_path = sample_log(params)
    size = (150, 200, 30) if args.quick else (943, 1682, 106)  # users, movies, ratings each: ML-100K's shape
    ml = args.movielens or planted_ml100k(Path(tempfile.mkdtemp(prefix="ctr_dmr_ml_")), 0, *size)
    for name, source, path, features in (
        ("sample log", log_source, log_path, CtrFeatures((), (), ())),
        ("MovieLens-100K format" + ("" if args.movielens else ", planted"), "movielens", ml, ML_FEATURES),
    ):
        compare(dataset(name, source, path, features, params), params, args.seeds, epochs)
    emit(f"\nload average at the end: {os.getloadavg()[0]:.1f}")
    REPORT.save(f"bench/out/ctr_dmr{'_quick' if args.quick else ''}.md")


if __name__ == "__main__":
    main()

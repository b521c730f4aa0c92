"""Top-K speed side by side with RecBole 1.2.1: BPR-MF and LightGCN on the same data, in one run.

RecBole 1.2.1 needs numpy < 2, pandas < 3, scipy < 1.12 and setuptools < 81, so it runs in its own
virtual environment, built here on first use (``python -m venv`` + pip from the package registry) under
``--cache`` (default ``~/.cache/microvideo-bench/recbole``) and reused while its stamp file matches the
requirements. The torch there is ours (same version) unless ``--torch`` says otherwise; when that
version does not install, the newest torch that does is taken (the table names both).

Data: the built-in synthetic dataset (``pipeline.rec.synthetic``, the ``rec_sample`` stage's function;
``rec_sample`` params with ``--users`` / ``--items`` / ``--per-user`` replacing the sizes), generated in
a temp folder and read by the ``mmrec`` adapter into ``RecData`` (the ``rec_data`` stage's rules). The
same codes are written as RecBole atomic files (``<name>.{train,valid,test}.inter``, ``user_id:token
item_id:token``, read with ``benchmark_filename``, plus ``<name>.item`` so both rank every item), so
both libraries use the same given split.

Both sides: embedding size 64, batch ``--batch``, 1 uniform negative per positive (never a training
positive of that user), Adam at ``--lr``, ``--epochs`` epochs, validation Recall@20 after each epoch
and the best epoch kept (ours: ``pipeline.rec.train.fit``; RecBole: ``Trainer.fit`` with
``valid_metric: recall@20``), ``--threads`` torch threads (``torch.set_num_threads`` and
``OMP_NUM_THREADS``). Measured: training seconds per epoch (validation excluded: ours from ``fit``,
RecBole's by timing ``Trainer._train_epoch``), full-ranking test evaluation seconds (training and
validation positives masked, Recall/NDCG@20, best of 2; batches of ``--eval-users`` users on both
sides) and test Recall@20. Other hyper-parameters: each library's own (ours ``rec.*`` from params.yaml:
``rec.reg`` L2; RecBole's BPR has none, its LightGCN ``reg_weight`` 1e-5; both LightGCNs 2 layers).

    python bench/recbole_speed.py [--users 6000 --items 3000] [--epochs 5] [--threads 2] [--cache DIR]

Network (pip) is used only when the environment is built. Not imported by the tests.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import logging
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import torch
from report import Report, cpu_name, usable_cores

from pipeline.datasets import read_source
from pipeline.params import load_params
from pipeline.rec import data as rec_data
from pipeline.rec import synthetic
from pipeline.rec.train import fit, rank

RECBOLE = "recbole==1.2.1"
PINS = ["numpy<2", "pandas<3", "scipy<1.12", "setuptools<81"]
MODELS = {"bpr_mf": "BPR", "lightgcn": "LightGCN"}
REPORT = Report()  # printed as it goes, written to bench/out/recbole_speed.md at the end
emit = REPORT.emit


def machine(threads: int) -> str:
    cpu, cores = cpu_name(), usable_cores()
    load = "/".join(f"{x:.1f}" for x in os.getloadavg())
    return f"{cpu}, {cores} cores usable, torch threads per side: {threads}, load average {load} (1/5/15 min)"


# ---------------------------------------------------------------------------------------------- environment


def ours_torch() -> str:
    return torch.__version__.split("+")[0]


def pip(venv: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [str(venv / "bin" / "python"), "-m", "pip", "install", "--progress-bar", "off", *args]
    print("$ " + " ".join(cmd), flush=True)
    return subprocess.run(cmd, capture_output=True, text=True)


def recbole_env(cache: Path, torch_spec: str | None) -> Path:
    """The RecBole venv's python: reused when its stamp matches, else built (pip from the registry)."""
    venv = cache / "recbole-venv"
    wanted = [RECBOLE, *PINS, torch_spec or f"torch=={ours_torch()}"]
    stamp = venv / "microvideo-bench.json"
    key = hashlib.sha256(json.dumps(wanted).encode()).hexdigest()[:16]
    if stamp.exists() and json.loads(stamp.read_text()).get("key") == key:
        return venv / "bin" / "python"
    cache.mkdir(parents=True, exist_ok=True)
    if not (venv / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    got = pip(venv, *wanted)
    if got.returncode != 0 and torch_spec is None:  # our torch version does not install there: the newest that does
        print(got.stdout[-3000:] + got.stderr[-3000:], file=sys.stderr)
        print(f"torch=={ours_torch()} did not install beside {RECBOLE}; trying the newest torch", file=sys.stderr)
        got = pip(venv, *wanted[:-1], "torch")
    if got.returncode != 0:
        raise SystemExit(f"building the RecBole environment failed:\n{got.stdout[-4000:]}\n{got.stderr[-4000:]}")
    probe = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import recbole, torch, numpy; print(torch.__version__, numpy.__version__)",
        ],
        capture_output=True,
        text=True,
    )
    if probe.returncode != 0:
        raise SystemExit(f"the RecBole environment does not import:\n{probe.stderr[-4000:]}")
    stamp.write_text(json.dumps({"key": key, "requirements": wanted, "versions": probe.stdout.strip()}) + "\n")
    return venv / "bin" / "python"


# ---------------------------------------------------------------------------------------------- data


def dataset(params, users: int, items: int, per_user: float, folder: Path) -> rec_data.RecData:
    cfg = dataclasses.replace(params.rec_sample, n_users=users, n_items=items, interactions_per_user=per_user)
    raw_dir = folder / "mmrec"
    synthetic.write(synthetic.generate(cfg), raw_dir, cfg.name)
    data_cfg = dataclasses.replace(params.rec_data, source="mmrec", path=str(raw_dir))
    return rec_data.build(read_source("mmrec", str(raw_dir), data_cfg.label), data_cfg)[0]


def write_atomic(data: rec_data.RecData, folder: Path, name: str) -> None:
    """RecBole atomic files of the same codes: one ``.inter`` per split and ``.item`` listing every item."""
    out = folder / name
    out.mkdir(parents=True, exist_ok=True)
    for k, split in enumerate(("train", "valid", "test")):
        u, i = data.pairs(k)
        rows = "\n".join(f"u{a}\ti{b}" for a, b in zip(u, i))
        (out / f"{name}.{split}.inter").write_text(f"user_id:token\titem_id:token\n{rows}\n", encoding="utf-8")
    items = "\n".join(f"i{b}" for b in range(data.n_items))
    (out / f"{name}.item").write_text(f"item_id:token\n{items}\n", encoding="utf-8")


# ---------------------------------------------------------------------------------------------- ours


def run_ours(model: str, data: rec_data.RecData, params, args) -> dict:
    cfg = dataclasses.replace(
        params.rec,
        model=model,
        embed_dim=64,
        layers=2,
        lr=args.lr,
        batch_size=args.batch,
        epochs=args.epochs,
        patience=args.epochs,
        eval_batch=args.eval_users,
        seed=args.seed,
    )
    result = fit(cfg, data)
    times, metrics = [], {}
    for _ in range(2):
        start = time.perf_counter()
        metrics = rank(result.model, data, 2, ks=(20,), batch=cfg.eval_batch)
        times.append(time.perf_counter() - start)
    return {
        "epoch_s": result.seconds_per_epoch,
        "eval_s": min(times),
        "recall@20": metrics["recall@20"],
        "ndcg@20": metrics["ndcg@20"],
        "best_epoch": result.best_epoch,
        "users": metrics.get("users"),
    }


# ---------------------------------------------------------------------------------------------- RecBole

DRIVER = textwrap.dedent(
    """
    import functools, json, logging, sys, time
    import torch

    torch.load = functools.partial(torch.load, weights_only=False)  # RecBole's checkpoints hold a config object
    spec = json.loads(sys.argv[1])
    torch.set_num_threads(spec["threads"])
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import get_model, get_trainer, init_seed

    config = Config(model=spec["model"], dataset=spec["name"], config_dict=spec["config"])
    init_seed(config["seed"], config["reproducibility"])
    logging.disable(logging.INFO)
    start = time.perf_counter()
    dataset = create_dataset(config)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    prep_s = time.perf_counter() - start
    torch.set_num_threads(spec["threads"])
    model = get_model(config["model"])(config, train_data._dataset).to(config["device"])
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
    epoch_times = []
    inner = trainer._train_epoch

    def timed(*a, **k):
        t = time.perf_counter()
        out = inner(*a, **k)
        epoch_times.append(time.perf_counter() - t)
        return out

    trainer._train_epoch = timed
    best_score, best_valid = trainer.fit(train_data, valid_data, saved=True, show_progress=False, verbose=False)
    times, result = [], {}
    for load_best in (True, False):  # the first loads the best epoch's checkpoint (weights_only=False)
        t = time.perf_counter()
        result = trainer.evaluate(test_data, load_best_model=load_best, show_progress=False)
        times.append(time.perf_counter() - t)
    print("RESULT " + json.dumps({
        "epoch_s": sum(epoch_times) / len(epoch_times), "epoch_times": epoch_times, "eval_s": min(times),
        "eval_times": times, "recall@20": float(result["recall@20"]), "ndcg@20": float(result["ndcg@20"]),
        "best_valid_recall@20": float(best_score), "prep_s": prep_s, "users": dataset.user_num - 1, "items": dataset.item_num - 1, "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
    }))
    """
)


def run_recbole(python: Path, model: str, n_items: int, folder: Path, name: str, args) -> dict:
    config = {
        "data_path": str(folder),
        "checkpoint_dir": str(folder / "saved"),
        "benchmark_filename": ["train", "valid", "test"],
        "USER_ID_FIELD": "user_id",
        "ITEM_ID_FIELD": "item_id",
        "load_col": {"inter": ["user_id", "item_id"], "item": ["item_id"]},
        "use_gpu": False,
        "seed": args.seed,
        "reproducibility": True,
        "embedding_size": 64,
        "n_layers": 2,
        "epochs": args.epochs,
        "stopping_step": args.epochs,
        "eval_step": 1,
        "learning_rate": args.lr,
        "train_batch_size": args.batch,
        "eval_batch_size": args.eval_users * (n_items + 1),  # full sort: eval_batch_size // item_num users a batch
        "train_neg_sample_args": {
            "distribution": "uniform",
            "sample_num": 1,
            "alpha": 1.0,
            "dynamic": False,
            "candidate_num": 0,
        },
        "eval_args": {"split": {"RS": [0.8, 0.1, 0.1]}, "order": "RO", "group_by": "user", "mode": "full"},
        "metrics": ["Recall", "NDCG"],
        "topk": [20],
        "valid_metric": "Recall@20",
        "worker": 0,
        "show_progress": False,
        "state": "WARNING",
    }
    spec = {"model": model, "name": name, "config": config, "threads": args.threads}
    driver = folder / "recbole_driver.py"
    driver.write_text(DRIVER, encoding="utf-8")
    env = os.environ | {"OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
    env.pop("PYTHONPATH", None)
    got = subprocess.run(
        [str(python), str(driver), json.dumps(spec)], cwd=folder, env=env, capture_output=True, text=True
    )
    line = next((x for x in got.stdout.splitlines() if x.startswith("RESULT ")), None)
    if got.returncode != 0 or line is None:
        raise SystemExit(f"RecBole {model} failed (exit {got.returncode}):\n{got.stdout[-4000:]}\n{got.stderr[-6000:]}")
    return json.loads(line.removeprefix("RESULT "))


# ---------------------------------------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=6000)
    ap.add_argument("--items", type=int, default=3000)
    ap.add_argument("--per-user", type=float, default=20.0, help="mean interactions per user")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--batch", type=int, default=2048)
    ap.add_argument("--eval-users", type=int, default=1024, help="users per full-ranking batch (both sides)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    ap.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "microvideo-bench" / "recbole")
    ap.add_argument("--torch", default=None, help="torch requirement in RecBole's venv (default: our version)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    torch.set_num_threads(args.threads)
    params = load_params()
    python = recbole_env(args.cache, args.torch)
    versions = json.loads((python.parent.parent / "microvideo-bench.json").read_text())["versions"]
    emit(f"machine: {machine(args.threads)} at the start")
    with tempfile.TemporaryDirectory(prefix="recbole_bench_") as tmp:
        folder, name = Path(tmp), "synthetic"
        data = dataset(params, args.users, args.items, args.per_user, folder)
        write_atomic(data, folder, name)
        s = data.summary
        emit(
            f"\nsynthetic (rec_sample generator, seed {params.rec_sample.seed}): {data.n_users} users x "
            f"{data.n_items} items; train {s['train_interactions']} / valid {s['valid_interactions']} / test "
            f"{s['test_interactions']} (given split, same files for both). {args.epochs} epochs, embedding 64, "
            f"batch {args.batch}, 1 uniform negative, Adam lr {args.lr}, torch threads per side: {args.threads}; ours torch "
            f"{torch.__version__} / numpy {np.__version__}, RecBole 1.2.1 with torch / numpy {versions}.\n"
        )
        emit(
            "| model | library | s/epoch | full eval s | Recall@20 | NDCG@20 | speed-up (ours vs RecBole) epoch / eval |"
        )
        emit("|---|---|---|---|---|---|---|")
        for ours_name, theirs_name in MODELS.items():
            if ours_name not in args.models:
                continue
            mine = run_ours(ours_name, data, params, args)
            theirs = run_recbole(python, theirs_name, data.n_items, folder, name, args)
            print(json.dumps({"ours": mine, "recbole": theirs}), file=sys.stderr)
            emit(
                f"| {ours_name} | ours | {mine['epoch_s']:.3f} | {mine['eval_s']:.3f} | {mine['recall@20']:.4f} | "
                f"{mine['ndcg@20']:.4f} | {theirs['epoch_s'] / mine['epoch_s']:.1f}x / "
                f"{theirs['eval_s'] / mine['eval_s']:.1f}x |"
            )
            emit(
                f"| {ours_name} | RecBole {theirs_name} | {theirs['epoch_s']:.3f} | {theirs['eval_s']:.3f} | "
                f"{theirs['recall@20']:.4f} | {theirs['ndcg@20']:.4f} | 1x |"
            )
    emit(f"\nload average at the end: {'/'.join(f'{x:.1f}' for x in os.getloadavg())}")
    REPORT.save("bench/out/recbole_speed.md")


if __name__ == "__main__":
    main()

"""What a visual precision does downstream: the sample pipeline at fp32 and at int8 (or bf16), side by side.

    python bench/precision.py [--precisions fp32,int8] [--set KEY=VALUE ...] [--k 10] [--keep DIR]

Copies the repository (its tracked and untracked files; no data) into a throw-away git repository and
runs, once per precision, the issue's acceptance command ``dvc exp run classify -S visual.precision=<p>``
(with every ``--set``, e.g. ``--set visual.resnet152.weights=/models/resnet152.pth`` for real weights;
decode and audio run once, later experiments take them from DVC's run cache). After each run it reads:

- each visual store's metadata: the precision it records and, at int8, the calibration record (clips,
  relative error and cosine on them);
- the stores' vector columns, so that every video of the corpus (not only the calibration clips) is
  compared with the first precision's features: mean and max relative L2 error, smallest cosine;
- ``metrics/reduce.json`` (explained variance as fitted) and, since on the sample corpus reduce keeps
  training rows - 1 components and so explains everything, the variance that the first ``--k`` principal
  components of the training split explain;
- ``metrics/classify/metrics.json`` (test accuracy, macro F1) and the test predictions, to count the test
  videos whose predicted label changed.

Prints markdown tables and writes them to ``bench/out/precision.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import torch
from extract import min_cos, rel_errors
from report import Report, cpu_name, usable_cores

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.core import store  # noqa: E402
from tests.stages.project import copy_worktree  # noqa: E402

GIT = ["git", "-c", "user.email=bench@localhost", "-c", "user.name=bench"]


def copy_repo(dest: Path) -> None:
    """The working tree's files (not data, models_out or the venv) as a committed git repository at ``dest``."""
    copy_worktree(dest)
    for cmd in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "bench/precision.py", "--allow-empty"]):
        subprocess.run([*GIT, *cmd], cwd=dest, check=True, capture_output=True)


def exp_run(repo: Path, sets: list[str]) -> float:
    bindir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": bindir + os.pathsep + os.environ["PATH"], "DVC_NO_ANALYTICS": "1"}
    env.pop("PYTHONPATH", None)
    cmd = [os.path.join(bindir, "dvc"), "exp", "run", "classify", *[a for s in sets for a in ("-S", s)]]
    print("$", " ".join(cmd[1:]), flush=True)
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"dvc exp run failed ({' '.join(sets)}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return time.perf_counter() - start


def vector_column(meta: dict) -> str:
    """The store's feature vector: its first one-dimensional column that is not a distribution."""
    return next(c for c, d in meta["dims"].items() if len(d) == 1 and not c.endswith("_probs"))


def read_run(repo: Path) -> dict:
    """What one experiment left: per visual store its metadata and vectors by video, and the metrics."""
    stores = {}
    for path in sorted((repo / "features/stores").glob("visual_*.parquet")):
        if path.name.endswith("_failures.parquet"):
            continue
        meta = store.read_meta(path)
        col = vector_column(meta)
        table = store.read_table(path, columns=["video_id", col])
        vectors = dict(zip(table.column("video_id").to_pylist(), np.asarray(table.column(col).to_pylist())))
        stores[meta["extractor"]] = {"meta": meta, "vectors": vectors, "column": col}
    manifest = pq.read_table(repo / "data/ingest/manifest.parquet", columns=["video_id", "split"]).to_pylist()
    preds = pq.read_table(repo / "models_out/classify_predictions.parquet").to_pylist()
    return {
        "stores": stores,
        "train": {r["video_id"] for r in manifest if r["split"] == "train"},
        "reduce": json.loads((repo / "metrics/reduce.json").read_text()),
        "classify": json.loads((repo / "metrics/classify/metrics.json").read_text())["test"],
        "predicted": {r["video_id"]: r["predicted"] for r in preds},
    }


def top_k_variance(vectors: dict[str, np.ndarray], train: set[str], k: int) -> float:
    """Share of the training split's variance that its first ``k`` principal components explain."""
    x = np.stack([v for vid, v in sorted(vectors.items()) if vid in train]).astype(np.float64)
    s = np.linalg.svd(x - x.mean(0), compute_uv=False) ** 2
    return float(s[:k].sum() / s.sum())


def compare(ref: dict, got: dict) -> tuple[float, float, float]:
    """Mean and max relative L2 error and smallest cosine of ``got`` against ``ref``, over the shared videos."""
    ids = sorted(set(ref) & set(got))
    a, b = np.stack([ref[i] for i in ids]), np.stack([got[i] for i in ids])
    rel = rel_errors(b, a)
    return float(rel.mean()), float(rel.max()), min_cos(b, a)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--precisions", default="fp32,int8", help="the first is the reference")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="more -S for every run")
    ap.add_argument("--k", type=int, default=10, help="principal components for the explained-variance column")
    ap.add_argument("--keep", metavar="DIR", help="run in DIR (created) and keep it, instead of a temp folder")
    args = ap.parse_args()
    precisions = args.precisions.split(",")
    report = Report()
    report.emit(
        f"{cpu_name()}, {usable_cores()} cores ({torch.backends.cpu.get_cpu_capability()}), torch "
        f"{torch.__version__}; sample corpus; -S {' '.join(args.set) or '(params.yaml as is)'}\n"
    )
    with tempfile.TemporaryDirectory(prefix="bench-precision-") as tmp:
        repo = Path(args.keep) if args.keep else Path(tmp)
        repo.mkdir(parents=True, exist_ok=True)
        copy_repo(repo)
        runs, seconds = {}, {}
        for p in precisions:
            seconds[p] = exp_run(repo, [f"visual.precision={p}", *args.set])
            runs[p] = read_run(repo)
    ref = runs[precisions[0]]
    report.emit(
        f"| extractor | precision | stored as | weights | calibration (mean / max rel. error) | "
        f"all videos: mean rel. error | max | min cos | top-{args.k} PCs explain | reduce explained |"
    )
    report.emit("|---|---|---|---|---|---|---|---|---|---|")
    for name in ref["stores"]:
        for p in precisions:
            s = runs[p]["stores"][name]
            meta, int8 = s["meta"], s["meta"].get("int8")
            calib = (
                f"{len(int8['calibration_videos'])} clips: {int8['rel_error_mean']:.2%} / {int8['rel_error_max']:.2%}"
                if int8
                else meta.get("int8_fallback", "-")
            )
            mean, worst, cos = compare(ref["stores"][name]["vectors"], s["vectors"])
            variance = top_k_variance(s["vectors"], runs[p]["train"], args.k)
            reduce = runs[p]["reduce"].get(name, {}).get("explained_variance", float("nan"))
            report.emit(
                f"| {name} | {p} | {meta['precision']} | {meta['weights']} | {calib} | {mean:.2%} | {worst:.2%} | "
                f"{cos:.5f} | {variance:.4f} | {reduce:.4f} |"
            )
    report.emit(
        "\n| precision | test accuracy | macro F1 | test predictions changed vs " + precisions[0] + " | run s |"
    )
    report.emit("|---|---|---|---|---|")
    for p in precisions:
        c, pred = runs[p]["classify"], runs[p]["predicted"]
        changed = sum(pred[v] != ref["predicted"].get(v) for v in pred)
        report.emit(
            f"| {p} | {c['accuracy']:.4f} | {c['macro_f1']:.4f} | {changed} of {len(pred)} | {seconds[p]:.0f} |"
        )
    report.save(ROOT / "bench/out/precision.md")


if __name__ == "__main__":
    main()

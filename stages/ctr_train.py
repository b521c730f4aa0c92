"""Stage ``ctr_train``: train ``ctr.model`` on the ctr_data samples, evaluate on the test split.

Reads ``paths.ctr_data`` (sample tables, and its ``features.parquet`` when ``ctr.use_content`` is true),
params ``ctr.*``. Writes ``paths.ctr_model``/``model.pt`` (checkpoint) and ``predictions.parquet`` (test
samples with their scores), ``paths.ctr_metrics`` (test AUC, logloss, accuracy, user-grouped AUC,
cold-start AUC within the cold slice, AUC per history-length group; for ``frame`` also ``clip_auc``, the
clip-level skip prediction) and ``paths.ctr_plots``/``roc.csv``
and ``training.csv`` (per-epoch curves).
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import torch

from pipeline.core import store
from pipeline.core.cli import run_stage
from pipeline.core.config import ConfigError
from pipeline.ctr.experiment import load_dataset, run
from pipeline.ctr.metrics import roc_points
from pipeline.ctr.train import ContentError, save_checkpoint
from pipeline.params import load_params
from registry import UnknownName

log = logging.getLogger("stage.ctr_train")


def main() -> None:
    params = load_params()
    cfg, paths = params.ctr, params.paths
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    data = load_dataset(paths.ctr_data)
    result, metrics, p = run(cfg, data)
    out = Path(paths.ctr_model)
    save_checkpoint(out / "model.pt", result.model, cfg.model, data.spec, cfg)
    test = data.tables["test"]
    preds = test.select(["user", "item", "timestamp", "label", "cold"]).append_column(
        "score", pa.array(p.astype(np.float32))
    )
    store.write_table(preds, out / "predictions.parquet", store.make_meta("ctr_train", params=cfg))
    store.write_text(paths.ctr_metrics, json.dumps(metrics, indent=2, sort_keys=True))
    y = test.column("label").to_numpy().astype(np.int64)
    fpr, tpr = roc_points(y, p) if len(np.unique(y)) == 2 else (np.array([0.0, 1.0]), np.array([0.0, 1.0]))
    plots = Path(paths.ctr_plots)
    store.write_text(plots / "roc.csv", "fpr,tpr\n" + "".join(f"{a:.4f},{b:.4f}\n" for a, b in zip(fpr, tpr)))
    keys = ["epoch", "train_logloss", "valid_logloss", "valid_auc"]
    rows = "".join(",".join(f"{r[k]:.6g}" for k in keys) + "\n" for r in result.curve)
    store.write_text(plots / "training.csv", ",".join(keys) + "\n" + rows)
    log.info(
        "%s (content %s): test AUC %s, logloss %s, GAUC %s, cold-start AUC %s (%d same-user pairs, %d cold samples), "
        "best epoch %d",
        cfg.model,
        "on" if cfg.use_content else "off",
        metrics["auc"],
        metrics["logloss"],
        metrics["gauc"],
        metrics["cold_auc"],
        metrics["cold_pairs"],
        metrics["cold_samples"],
        result.best_epoch,
    )
    if "clip_auc" in metrics:
        log.info(
            "%s: clip-level skip AUC %s over %d labelled clips", cfg.model, metrics["clip_auc"], metrics["clip_labels"]
        )


if __name__ == "__main__":
    sys.exit(run_stage(main, (ConfigError, ContentError, UnknownName, store.StoreError)))

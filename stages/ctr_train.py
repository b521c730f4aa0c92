"""Stage ``ctr_train``: train ``ctr.model`` on the ctr_data samples, evaluate on the test split.

Reads ``paths.ctr_data`` (sample tables), ``paths.items`` when ``ctr.use_content`` is true, params
``ctr.*``. Writes ``paths.ctr_model``/``model.pt`` (checkpoint) and ``predictions.parquet`` (test
samples with their scores), ``paths.ctr_metrics`` (test AUC, logloss, accuracy, user-grouped AUC,
cold-start AUC) and ``paths.ctr_plots``/``roc.csv`` and ``training.csv`` (per-epoch curves).
"""
from __future__ import annotations

import json
import logging
import math
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import torch

from models.ctr.base import FeatureSpec
from models.ctr.registry import UnknownModel
from pipeline import store
from pipeline.config import ConfigError
from pipeline.ctr.metrics import evaluate, roc_points
from pipeline.ctr.train import ContentError, fit, load_content, predict, save_checkpoint, table_tensors
from pipeline.params import load_params
from pipeline.runtime import run_stage

log = logging.getLogger("stage.ctr_train")


def _finite(metrics: dict) -> dict:
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in metrics.items()}


def main() -> None:
    params = load_params()
    cfg, paths = params.ctr, params.paths
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    folder = Path(paths.ctr_data)
    tables = {s: store.read_table(folder / f"{s}.parquet", expect={"stage": "ctr_data"}) for s in ("train", "valid", "test")}
    spec = FeatureSpec.from_meta(store.read_meta(folder / "train.parquet")["spec"])
    content = None
    if cfg.use_content:
        vocab = store.read_table(folder / "items.parquet", expect={"stage": "ctr_data"})
        content = load_content(paths.items, vocab, cfg.content)
    data = {s: table_tensors(t) for s, t in tables.items()}
    result = fit(cfg.model, spec, cfg, data["train"], data["valid"], content)
    test = data["test"]
    p = predict(result.model, test, 4 * cfg.batch_size)
    y, cold = test["label"].numpy(), tables["test"].column("cold").to_numpy(zero_copy_only=False)
    metrics = _finite(evaluate(y, p, test["user"].numpy(), cold))
    metrics |= {"model": cfg.model, "use_content": cfg.use_content, "best_epoch": result.best_epoch,
                "epochs_run": len(result.curve),
                "train_samples_per_s": result.train_samples / max(result.step_seconds, 1e-9),
                "loader_share": result.load_seconds / max(result.step_seconds, 1e-9)}
    out = Path(paths.ctr_model)
    save_checkpoint(out / "model.pt", result.model, cfg.model, spec, cfg)
    preds = tables["test"].select(["user", "item", "timestamp", "label", "cold"]).append_column(
        "score", pa.array(p.astype(np.float32)))
    store.write_table(preds, out / "predictions.parquet", store.make_meta("ctr_train", params=cfg))
    store.write_text(paths.ctr_metrics, json.dumps(metrics, indent=2, sort_keys=True))
    plots = Path(paths.ctr_plots)
    fpr, tpr = roc_points(y, p) if len(np.unique(y)) == 2 else (np.array([0.0, 1.0]), np.array([0.0, 1.0]))
    store.write_text(plots / "roc.csv", "fpr,tpr\n" + "".join(f"{a:.4f},{b:.4f}\n" for a, b in zip(fpr, tpr)))
    keys = ["epoch", "train_logloss", "valid_logloss", "valid_auc"]
    rows = "".join(",".join(f"{r[k]:.6g}" for k in keys) + "\n" for r in result.curve)
    store.write_text(plots / "training.csv", ",".join(keys) + "\n" + rows)
    log.info("%s (content %s): test AUC %s, logloss %s, GAUC %s, cold-start AUC %s (%d samples), best epoch %d",
             cfg.model, "on" if cfg.use_content else "off", metrics["auc"], metrics["logloss"], metrics["gauc"],
             metrics["cold_auc"], metrics["cold_samples"], result.best_epoch)


if __name__ == "__main__":
    sys.exit(run_stage(main, (ConfigError, ContentError, UnknownModel, store.StoreError)))

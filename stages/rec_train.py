"""Stage ``rec_train``: train ``rec.model`` on the rec_data tables, rank every item for every test user.

Reads ``paths.rec_data`` and params ``rec.*``. Writes ``paths.rec_model``/``model.pt`` (checkpoint),
``paths.rec_metrics`` (test Recall / NDCG / Precision / HitRate at 10, 20, 50, overall and on the
cold-item slice, users evaluated and skipped, best epoch, seconds per epoch) and
``paths.rec_plots``/``training.csv`` (per epoch: training loss, validation recall@20 and ndcg@20).
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import torch

from pipeline.core import store
from pipeline.core.cli import run_stage
from pipeline.core.config import ConfigError
from pipeline.params import load_params
from pipeline.rec import data as rec_data
from pipeline.rec.train import ContentError, final_metrics, fit, save_checkpoint, valid_metrics
from registry import UnknownName

log = logging.getLogger("stage.rec_train")
CURVE = ("epoch", "train_loss", "valid_recall@20", "valid_ndcg@20")


def main() -> None:
    params = load_params()
    cfg, paths = params.rec, params.paths
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    data = rec_data.read(paths.rec_data)
    result = fit(cfg, data)
    metrics = final_metrics(result.model, data, cfg.eval_batch)
    metrics |= {
        "model": cfg.model,
        "best_epoch": result.best_epoch,
        "epochs": result.epochs,
        "seconds_per_epoch": round(result.seconds_per_epoch, 4),
        "valid": valid_metrics(result.model, data, cfg.eval_batch) | {"epoch": result.best_epoch},
        "cold_placement": dict(zip(("spread", "shift", "slope"), result.model.cold_affine.tolist())),
        "profile_weight": float(result.model.profile_weight),  # 0: no blend (ID-only models)
        # staged (content) models: the epoch the content phase began and whether its ranking was kept
        "content": {"from_epoch": result.content_from, "kept": result.model.content_on}
        if result.model.staged
        else None,
    }
    save_checkpoint(Path(paths.rec_model) / "model.pt", result.model, cfg)
    store.write_text(paths.rec_metrics, json.dumps(metrics, indent=2, sort_keys=True))
    rows = "".join(",".join(f"{r[k]:.6g}" for k in CURVE) + "\n" for r in result.curve)
    store.write_text(Path(paths.rec_plots) / "training.csv", ",".join(CURVE) + "\n" + rows)
    log.info(
        "%s: valid recall@20 %.4f; test recall@20 %.4f, ndcg@20 %.4f; cold recall@20 %s (%d users); "
        "%d users skipped; best epoch %d",
        cfg.model,
        metrics["valid"]["recall@20"],
        metrics["recall@20"],
        metrics["ndcg@20"],
        metrics["cold"].get("recall@20"),
        metrics["cold"].get("users", 0),
        metrics["users_skipped"],
        result.best_epoch,
    )


if __name__ == "__main__":
    sys.exit(run_stage(main, (ConfigError, ContentError, UnknownName, rec_data.DataError, store.StoreError)))

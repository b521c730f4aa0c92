"""Stage ``classify``: train the multimodal micro-video classifier, evaluate it on the test split.

Reads ``paths.items`` (labels, splits, reduced vectors), the visual/audio stores for sequence
inputs (``classify.<m>.input: sequence``), params ``classify.*``. Writes ``paths.classify_model``/
``model.pt`` (state dict + spec JSON), ``paths.classify_predictions`` (test videos: label, predicted,
``prob_<class>``) and, through dvclive, ``paths.classify_live``: ``metrics.json`` (test accuracy,
macro and per-class precision/recall/F1, counts, epochs, seconds), ``plots/metrics/`` (per-epoch
curves) and ``plots/sklearn/confusion_matrix.json``.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import torch
from dvclive import Live

from pipeline.classify.data import SPLITS, LabelError, load_data
from pipeline.classify.metrics import classification_metrics
from pipeline.classify.train import fit, make_backbone, predict_proba, save_checkpoint, tensors
from pipeline.core import store
from pipeline.core.cli import run_stage
from pipeline.core.config import ConfigError
from pipeline.params import load_params
from registry import UnknownName

log = logging.getLogger("stage.classify")


class FileLive(Live):
    """dvclive as a file writer only (metrics.json, plots/metrics/*.tsv, plots/sklearn/*.json).

    DVC owns experiments here: ``dvc repro`` / ``dvc exp run`` run this stage and dvc.yaml declares
    its metrics and plots, so dvclive must not save an experiment (``save_dvc_exp=False``) nor write
    a dvc.yaml (``dvcyaml=None``). Its repository probing (``_init_dvc``: opening the DVC repo,
    ``dvc init`` of a plain git repo, reading HEAD -- which raises in a repository without commits)
    is skipped too: nothing it sets up is used with those two options off. dvclive is pinned (3.49.1).
    """

    def _init_dvc(self) -> None:
        self._save_dvc_exp = False


def main() -> None:
    params = load_params()
    cfg, paths = params.classify, params.paths
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    data = load_data(params)
    backbone, backbone_info = None, None
    if cfg.backbone != "none":
        frames = int(data.inputs["visual"].shape[1])
        backbone = make_backbone(cfg.backbone, params.visual, frames)
        backbone_info = {"name": cfg.backbone, "visual": store.plain(params.visual), "num_frames": frames}
    with FileLive(dir=paths.classify_live, save_dvc_exp=False, dvcyaml=None, report=None) as live:

        def on_epoch(row: dict[str, float]) -> None:
            for key, value in row.items():
                if key != "epoch":
                    live.log_metric(key.replace("_", "/", 1), value)  # train/loss, valid/accuracy, ...
            live.next_step()

        result = fit(cfg, data, backbone, on_epoch)
        test_rows = np.flatnonzero(data.split == "test")
        proba = predict_proba(result.model, tensors(data, test_rows))  # (N_test, C)
        y, pred = data.y[test_rows], proba.argmax(1)
        metrics = classification_metrics(y, pred, data.classes) if len(y) else None
        if metrics is None:
            log.warning("no labelled test videos: no test metrics (the model is still trained and saved)")
        else:
            for key in ("accuracy", "macro_precision", "macro_recall", "macro_f1"):
                live.log_metric(f"test/{key}", metrics[key], plot=False)
            for c, row in metrics["per_class"].items():
                for key, value in row.items():
                    live.log_metric(f"test/per_class/{c}/{key}", value, plot=False)
        counts = {f"n_{s}": int((data.split == s).sum()) for s in SPLITS}
        for key, value in {
            **counts,
            "n_missing_labels": data.n_missing_labels,
            "n_no_input": data.n_no_input,
            "epochs": len(result.curve),
            "best_epoch": result.best_epoch,
            "train_seconds": round(result.seconds, 2),
        }.items():
            live.log_metric(key, value, plot=False)
        names = np.asarray(data.classes, dtype=object)
        live.log_sklearn_plot(
            "confusion_matrix",
            names[y].tolist(),
            names[pred].tolist(),
            name="confusion_matrix.json",
            title="classify: confusion matrix (test split)",
        )
    save_checkpoint(Path(paths.classify_model) / "model.pt", result.model, backbone_info)
    ids = [data.video_ids[i] for i in test_rows]
    columns = {
        "video_id": pa.array(ids, pa.string()),
        "label": pa.array(names[y].tolist(), pa.string()),
        "predicted": pa.array(names[pred].tolist(), pa.string()),
    }
    columns |= {f"prob_{c}": pa.array(proba[:, i].astype(np.float32)) for i, c in enumerate(data.classes)}
    meta = store.make_meta("classify", params=cfg, classes=list(data.classes))
    store.write_table(pa.table(columns), paths.classify_predictions, meta)
    if metrics is not None:
        log.info(
            "test accuracy %.3f, macro-F1 %.3f on %d videos (%d without a label excluded); %d epochs, %.1f s",
            metrics["accuracy"],
            metrics["macro_f1"],
            len(ids),
            data.n_missing_labels,
            len(result.curve),
            result.seconds,
        )


if __name__ == "__main__":
    sys.exit(run_stage(main, (ConfigError, LabelError, UnknownName, store.StoreError)))

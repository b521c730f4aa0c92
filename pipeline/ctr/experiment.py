"""One CTR experiment: load the ctr_data tables (and content), train, score the test split.

Shared by ``stages/ctr_train.py`` and the comparison script ``bench/ctr_compare.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from models.ctr import MODELS
from models.ctr.base import FeatureSpec
from pipeline.core import store
from pipeline.ctr.build import FEATURES
from pipeline.ctr.clips import clip_labels
from pipeline.ctr.config import CtrConfig
from pipeline.ctr.metrics import auc, auc_by_history, evaluate
from pipeline.ctr.train import (
    Batch,
    TrainResult,
    clip_tensors,
    fit,
    load_content,
    predict,
    predict_clips,
    session_tensor,
    table_tensors,
    trend_tensors,
)

SPLITS = ("train", "valid", "test")
# Columns every model and metric reads (side features are checked against the spec by table_tensors).
REQUIRED = ("user", "item", "label", "timestamp", "hist", "hist_len", "hist_ts", "hist_total", "cold")


@dataclass(frozen=True)
class Dataset:
    tables: dict[str, pa.Table]
    tensors: dict[str, Batch]
    spec: FeatureSpec
    vocab: pa.Table  # item code <-> video_id
    features: Path  # ctr_data's item features (absent when the source has none)


def load_dataset(folder: str | Path) -> Dataset:
    folder = Path(folder)
    tables = {s: store.read_table(folder / f"{s}.parquet", expect={"stage": "ctr_data"}) for s in SPLITS}
    for name, table in tables.items():
        missing = [c for c in REQUIRED if c not in table.column_names]
        if missing:  # written by an older ctr_data
            raise store.StoreError(f"{folder / name}.parquet lacks columns {missing}; rerun ctr_data")
    meta = store.read_meta(folder / "train.parquet")["spec"]
    vocab = store.read_table(folder / "items.parquet", expect={"stage": "ctr_data"})
    tensors = {s: table_tensors(t, meta) for s, t in tables.items()}  # stacked in the spec's field order
    return Dataset(tables, tensors, FeatureSpec.from_meta(meta), vocab, folder / FEATURES)


def run(cfg: CtrConfig, data: Dataset) -> tuple[TrainResult, dict[str, Any], np.ndarray]:
    """Train ``cfg.model``; return the result, test metrics (NaN as None; ``history_auc``: AUC per
    history-length group; ``valid``: the kept epoch's validation AUC / logloss) and test scores."""
    content = load_content(data.features, data.vocab, cfg.content) if cfg.use_content else None
    tensors = data.tensors
    if MODELS.get(cfg.model).uses_sessions:
        tensors = {s: t | {"sess": session_tensor(data.tables[s], cfg.sessions)} for s, t in tensors.items()}
    if MODELS.get(cfg.model).uses_future:
        extra = trend_tensors(data.tables, cfg.trends, data.spec)
        tensors = {s: t | extra[s] for s, t in tensors.items()}
    clipped = MODELS.get(cfg.model).uses_clips
    if clipped:
        clip_content, skips = clip_tensors(data.features.parent, data.vocab, data.tables)
        content = (content or {}) | clip_content
        tensors = {s: t | {"skip": skips[s]} for s, t in tensors.items()}
    result = fit(cfg.model, data.spec, cfg, tensors["train"], tensors["valid"], content)
    test = tensors["test"]
    p = predict(result.model, test, 4 * cfg.batch_size)
    cold = data.tables["test"].column("cold").to_numpy(zero_copy_only=False)
    y = test["label"].numpy()
    metrics: dict[str, Any] = evaluate(y, p, test["user"].numpy(), cold)
    metrics["history_auc"] = auc_by_history(y, p, data.tables["test"].column("hist_total").to_numpy())
    if clipped:
        metrics |= clip_metrics(test["skip"].numpy(), predict_clips(result.model, test, 4 * cfg.batch_size))
    metrics = _finite_or_none(metrics)
    metrics |= {
        "model": cfg.model,
        "use_content": cfg.use_content,
        "best_epoch": result.best_epoch,
        # experiments are compared on this, never on the test numbers above
        "valid": _finite_or_none(
            {k.removeprefix("valid_"): result.curve[result.best_epoch - 1][k] for k in ("valid_auc", "valid_logloss")}
            | {"epoch": result.best_epoch}
        )
        if result.best_epoch
        else None,
        "epochs_run": len(result.curve),
        "train_samples_per_s": result.train_samples / max(result.step_seconds, 1e-9),
        "loader_share": result.load_seconds / max(result.step_seconds, 1e-9),
    }
    return result, metrics, p


def clip_metrics(skip: np.ndarray, clip_scores: np.ndarray) -> dict[str, Any]:
    """Clip-level skip prediction: AUC of the clip interests over the labelled clips (watched through:
    positive, the clip left at: negative), and how many samples and clips it rests on."""
    labels, mask = clip_labels(skip, clip_scores.shape[1])
    y, s = labels[mask], clip_scores[mask]
    return {
        "clip_auc": auc(y, s),  # NaN with one class
        "clip_samples": int(mask.any(1).sum()),
        "clip_labels": int(mask.sum()),
        "clip_positive_rate": float(y.mean()) if len(y) else float("nan"),
    }


def _finite_or_none(value: Any) -> Any:
    """NaN and infinities as None (JSON null), in nested dicts too."""
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    return None if isinstance(value, float) and not math.isfinite(value) else value

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

from models.ctr.base import FeatureSpec
from pipeline.core import store
from pipeline.core.params import CtrConfig
from pipeline.ctr.metrics import evaluate
from pipeline.ctr.train import Batch, TrainResult, fit, load_content, predict, table_tensors

SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class Dataset:
    tables: dict[str, pa.Table]
    tensors: dict[str, Batch]
    spec: FeatureSpec
    vocab: pa.Table  # item code <-> video_id


def load_dataset(folder: str | Path) -> Dataset:
    folder = Path(folder)
    tables = {s: store.read_table(folder / f"{s}.parquet", expect={"stage": "ctr_data"}) for s in SPLITS}
    meta = store.read_meta(folder / "train.parquet")["spec"]
    vocab = store.read_table(folder / "items.parquet", expect={"stage": "ctr_data"})
    tensors = {s: table_tensors(t, meta) for s, t in tables.items()}  # stacked in the spec's field order
    return Dataset(tables, tensors, FeatureSpec.from_meta(meta), vocab)


def run(cfg: CtrConfig, data: Dataset, items_path: str | Path | None) -> tuple[TrainResult, dict[str, Any], np.ndarray]:
    """Train ``cfg.model``; return the result, test metrics (NaN as None) and test scores."""
    content = load_content(items_path, data.vocab, cfg.content) if cfg.use_content else None
    result = fit(cfg.model, data.spec, cfg, data.tensors["train"], data.tensors["valid"], content)
    test = data.tensors["test"]
    p = predict(result.model, test, 4 * cfg.batch_size)
    cold = data.tables["test"].column("cold").to_numpy(zero_copy_only=False)
    metrics = evaluate(test["label"].numpy(), p, test["user"].numpy(), cold)
    metrics = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in metrics.items()}
    metrics |= {
        "model": cfg.model,
        "use_content": cfg.use_content,
        "best_epoch": result.best_epoch,
        "epochs_run": len(result.curve),
        "train_samples_per_s": result.train_samples / max(result.step_seconds, 1e-9),
        "loader_share": result.load_seconds / max(result.step_seconds, 1e-9),
    }
    return result, metrics, p

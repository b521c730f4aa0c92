"""The classifier's training loop, prediction and checkpoint.

Deterministic on CPU for a given seed (``torch.manual_seed`` for init and dropout, a seeded
generator for the batch order). Early stopping keeps the state with the best ``monitor`` on the
validation split. The objective is cross-entropy plus, with shared/private encoders,
``similarity_weight * similarity`` (shared visual vs shared audio, videos with audio only) and
``difference_weight * relu(margin - KL(private || shared))`` per modality (see models.classify.losses).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from models.classify.backbone import Backbone
from models.classify.losses import difference_penalty, kl_rows, similarity_loss
from models.classify.model import Batch, BranchSpec, Classifier, ModelSpec, Output
from pipeline.classify.config import ClassifyConfig, SharedPrivateConfig
from pipeline.classify.data import ClassifyData, normaliser
from pipeline.core.adam import Adam, ParamGroup
from pipeline.core.config import build
from pipeline.core.early_stop import EarlyStopping
from pipeline.core.tensors import resolve_device, save, slice_batch
from pipeline.visual.extractor import VisualConfig

log = logging.getLogger("classify.train")


@dataclass
class TrainResult:
    model: Classifier
    curve: list[dict[str, float]] = field(default_factory=list)  # one row per epoch
    best_epoch: int = 0
    seconds: float = 0.0


def model_spec(cfg: ClassifyConfig, data: ClassifyData) -> ModelSpec:
    branches = tuple(
        replace(b, aggregation=getattr(cfg, b.modality).aggregation)
        for b in data.branches
        if b.modality in cfg.modalities
    )
    return ModelSpec(
        branches, data.classes, cfg.hidden, cfg.clusters, cfg.fusion, cfg.shared_private.enabled, cfg.dropout
    )


def make_backbone(name: str, visual: VisualConfig, num_frames: int, pretrained: bool = True) -> Backbone:
    """The extractor's network with the visual.<name>.weights the visual stage uses (random init when not pretrained),
    as a trainable module: its feature head, preprocessing and clip averaging, so fine-tuning starts from exactly
    what ``visual@<name>`` extracts features with."""
    from pipeline.visual import extractor as visual_extractor
    from pipeline.visual import weights  # only a backbone run pays for these imports

    extractor = visual_extractor.create(name, visual, num_frames)
    if getattr(extractor.cfg, "probs", False):  # fine-tuning trains the pooled features, not the class head
        extractor = type(extractor)(replace(extractor.cfg, probs=False), num_frames)
    if pretrained:
        model = weights.load(extractor, extractor.cfg.weights).model
    else:
        model = extractor.build()
    (column,) = extractor.dims()
    return Backbone(
        extractor.head(model), extractor.dims()[column][-1], extractor.preprocess, _clip_average(extractor, column)
    )


def _clip_average(extractor: Any, column: str) -> Callable[[torch.Tensor, int], torch.Tensor]:
    """The extractor's per-video averaging of its clip features, ``(B*n, D)`` -> ``(B, D)`` (its one column)."""

    def aggregate(feats: torch.Tensor, batch: int) -> torch.Tensor:
        return extractor.aggregate(feats, batch)[column]

    return aggregate


def build_classifier(spec: ModelSpec, backbone: Backbone | None = None) -> Classifier:
    if any(b.kind == "frames" for b in spec.branches) and backbone is None:
        raise ValueError("a frames branch needs its backbone")
    return Classifier(spec, backbone)


def tensors(data: ClassifyData, rows: np.ndarray) -> Batch:
    out = {"label": torch.from_numpy(data.y[rows])}
    for m, x in data.inputs.items():
        out[m] = torch.from_numpy(np.ascontiguousarray(x[rows]))
        out[f"{m}_mask"] = torch.from_numpy(data.masks[m][rows])
    return out


def to_device(batch: Batch, device: torch.device) -> Batch:
    return {k: v.to(device) for k, v in batch.items()}


def objective(out: Output, labels: torch.Tensor, sp: SharedPrivateConfig) -> tuple[torch.Tensor, dict[str, float]]:
    """Total loss and its parts (for the curves)."""
    ce = F.cross_entropy(out.logits, labels)
    total, parts = ce, {"ce": float(ce.detach())}
    if out.shared:
        both = torch.ones_like(labels, dtype=torch.bool)
        for mask in out.masks.values():
            both = both & mask
        if "visual" in out.shared and "audio" in out.shared:
            sim = similarity_loss(out.shared["visual"][both], out.shared["audio"][both]) if both.any() else ce * 0
            total = total + sp.similarity_weight * sim
            parts["similarity"] = float(sim.detach())
        pens, kls = [], []
        for m, private in out.private.items():
            rows = out.masks[m]
            if rows.any():
                pens.append(difference_penalty(private[rows], out.shared[m][rows], sp.difference_margin))
                kls.append(kl_rows(private[rows], out.shared[m][rows]).mean().detach())
        if pens:
            total = total + sp.difference_weight * torch.stack(pens).mean()
            parts["difference_kl"] = float(torch.stack(kls).mean())
    return total, parts


def train_step(model: Classifier, opt: Adam, batch: Batch, sp: SharedPrivateConfig) -> dict[str, float]:
    model.train()
    loss, parts = objective(model(batch), batch["label"], sp)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return {"loss": float(loss.detach()), **parts}


@torch.inference_mode()
def predict_proba(model: Classifier, data: Batch, batch_size: int = 256) -> np.ndarray:
    """(N, n_classes) class probabilities."""
    model.eval()
    device = next(model.parameters()).device
    n = len(data["label"])
    out = [
        torch.softmax(model(to_device(slice_batch(data, torch.arange(s, min(s + batch_size, n))), device)).logits, -1)
        for s in range(0, n, batch_size)
    ]
    return torch.cat(out).cpu().numpy() if out else np.zeros((0, len(model.spec.classes)), np.float32)


def fit(
    cfg: ClassifyConfig,
    data: ClassifyData,
    backbone: Backbone | None = None,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
) -> TrainResult:
    torch.manual_seed(cfg.seed)
    model = build_classifier(model_spec(cfg, data), backbone)
    train_rows, valid_rows = data.split == "train", data.split == "valid"
    for m, branch in model.branches.items():
        if branch.spec.kind != "frames":  # a backbone's features are learnt: no fixed statistics
            mean, std = normaliser(data.inputs[m], train_rows & data.masks[m])
            branch.set_normaliser(torch.from_numpy(mean), torch.from_numpy(std))
    device = resolve_device(cfg.device, "classify.device")
    model.to(device)
    groups = [ParamGroup.of((p for n, p in model.named_parameters() if ".backbone." not in n), cfg.lr)]
    if backbone is not None:
        groups.append(ParamGroup.of(backbone.parameters(), cfg.backbone_lr))
    opt = Adam(groups, weight_decay=cfg.weight_decay)
    train, valid = tensors(data, np.flatnonzero(train_rows)), tensors(data, np.flatnonzero(valid_rows))
    if not len(valid["label"]):
        log.warning("no validation videos: early stopping watches the training loss")
    gen = torch.Generator().manual_seed(cfg.seed)
    result = TrainResult(model)
    stopper, t0 = EarlyStopping(model, cfg.patience, (-np.inf, -np.inf)), time.perf_counter()
    n = len(train["label"])
    for epoch in range(1, cfg.epochs + 1):
        perm, sums = torch.randperm(n, generator=gen), {}
        for s in range(0, n, cfg.batch_size):
            idx = perm[s : s + cfg.batch_size]
            for k, v in train_step(model, opt, to_device(slice_batch(train, idx), device), cfg.shared_private).items():
                sums[k] = sums.get(k, 0.0) + v * len(idx)
        row = {"epoch": epoch, **{f"train_{k}": v / max(n, 1) for k, v in sums.items()}}
        if len(valid["label"]):
            p = predict_proba(model, valid)
            y = valid["label"].numpy()
            row["valid_loss"] = float(-np.log(np.clip(p[np.arange(len(y)), y], 1e-12, None)).mean())
            row["valid_accuracy"] = float((p.argmax(1) == y).mean())
        result.curve.append(row)
        if on_epoch is not None:
            on_epoch(row)
        loss = row.get("valid_loss", row["train_loss"])
        score = (-loss, 0.0) if cfg.monitor == "valid_loss" else (row.get("valid_accuracy", 0.0), -loss)
        stop = stopper.step(score, epoch)
        result.best_epoch = stopper.best_epoch
        if stop:
            break
    result.seconds = time.perf_counter() - t0
    stopper.restore()
    log.info("trained %d epochs (best %d) in %.1f s", len(result.curve), result.best_epoch, result.seconds)
    return result


def save_checkpoint(path: str | Path, model: Classifier, backbone_info: dict[str, Any] | None = None) -> Path:
    """State dict + the model spec as JSON (loads with ``weights_only=True``: no pickled objects)."""
    spec = json.dumps(asdict(model.spec))
    blob = {"state": model.state_dict(), "spec": spec, "backbone": json.dumps(backbone_info)}
    return save(blob, path)


def load_checkpoint(path: str | Path) -> Classifier:
    blob = torch.load(path, map_location="cpu", weights_only=True)
    raw = json.loads(blob["spec"])
    branches = tuple(BranchSpec(**{**b, "shape": tuple(b["shape"])}) for b in raw.pop("branches"))
    spec = ModelSpec(branches=branches, **{**raw, "classes": tuple(raw["classes"])})
    info = json.loads(blob["backbone"])
    backbone = None
    if info:
        backbone = make_backbone(
            info["name"], build(VisualConfig, info["visual"], "visual"), info["num_frames"], pretrained=False
        )  # the state dict below holds the fine-tuned weights
    model = build_classifier(spec, backbone)
    model.load_state_dict(blob["state"])
    return model.eval()

"""The one training loop of every top-K model, its evaluation and checkpoints.

BPR-style training through the model contract (``models.rec.base``): each epoch shuffles the training
positives, draws ``model.negatives`` uniform negatives per positive that are never a training
positive of that user, and minimises ``loss.rank + rec.reg * loss.l2`` with Adam. After each epoch
the model is refreshed and ranked on the validation split (training positives masked); early stopping
keeps the epoch with the best validation Recall@20. Seeded (torch and numpy) and single-process, so
the same params give the same weights, metrics and checkpoint bytes.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models.rec import build
from models.rec.base import Content, Graph, RecModel, RecSizes
from pipeline.core.early_stop import EarlyStopping
from pipeline.core.params import RecConfig
from pipeline.core.tensors import save
from pipeline.rec.data import RecData
from pipeline.rec.metrics import KS, Pairs, evaluate

log = logging.getLogger("rec.train")
MONITOR = "recall@20"


class ContentError(ValueError):
    """``rec.content`` names a modality the item table does not have."""


@dataclass
class TrainResult:
    model: RecModel
    best_epoch: int = 0
    curve: list[dict[str, float]] = field(default_factory=list)  # per epoch: train_loss, valid recall@20, ndcg@20
    seconds_per_epoch: float = 0.0  # training only (the validation ranking excluded)


def sizes(cfg: RecConfig, data: RecData) -> RecSizes:
    return RecSizes(
        n_users=data.n_users,
        n_items=data.n_items,
        embed_dim=cfg.embed_dim,
        layers=cfg.layers,
        mlp=tuple(cfg.mlp),
        rank=cfg.rank,
        knn=cfg.knn,
        dropout=cfg.dropout,
    )


def graph(data: RecData) -> Graph:
    u, i = data.pairs(0)
    return Graph(torch.from_numpy(u), torch.from_numpy(i))


def content(data: RecData, names: tuple[str, ...]) -> Content | None:
    """The item table's modalities (``rec.content``; empty: all), or None when it has none."""
    chosen = names or tuple(data.features)
    missing = [m for m in chosen if m not in data.features]
    if missing:
        raise ContentError(f"rec.content names {missing}, not in the item table; it has {sorted(data.features)}")
    return {m: (torch.from_numpy(data.features[m]), torch.from_numpy(data.present[m])) for m in chosen} or None


def make_model(cfg: RecConfig, data: RecData) -> RecModel:
    torch.manual_seed(cfg.seed)
    return build(cfg.model, sizes(cfg, data), graph(data), content(data, cfg.content))


def sample_negatives(
    user: np.ndarray, per_positive: int, n_items: int, seen: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """(len(user), per_positive) uniform item codes, redrawn (vectorised) until none is in ``seen``
    (sorted keys user * n_items + item of the training positives)."""
    users = np.repeat(user, per_positive)
    out = rng.integers(0, n_items, len(users))
    todo = np.flatnonzero(_member(users * n_items + out, seen))
    for _ in range(1000):
        if not len(todo):
            return out.reshape(len(user), per_positive)
        out[todo] = rng.integers(0, n_items, len(todo))
        todo = todo[_member(users[todo] * n_items + out[todo], seen)]
    raise ValueError(f"negative sampling: {len(todo)} draws keep hitting positives (users who saw almost every item)")


def _member(keys: np.ndarray, sorted_keys: np.ndarray) -> np.ndarray:
    pos = np.clip(np.searchsorted(sorted_keys, keys), 0, max(len(sorted_keys) - 1, 0))
    return sorted_keys[pos] == keys if len(sorted_keys) else np.zeros(len(keys), bool)


def rank(model: RecModel, data: RecData, split: int, *, ks=KS, batch: int = 1024, cold: bool = False) -> dict[str, Any]:
    """Full-ranking metrics of ``split`` (1 valid, 2 test), masking training (and for test, validation) positives."""
    model.eval()
    with torch.no_grad():
        model.refresh()
        exclude = [Pairs.of(*data.pairs(s), data.n_users) for s in range(split)]
        targets = Pairs.of(*data.pairs(split), data.n_users)
        return evaluate(
            model.scores,
            targets,
            exclude,
            data.n_items,
            ks=ks,
            batch=batch,
            cold=data.cold_items() if cold else None,
        )


def fit(cfg: RecConfig, data: RecData, model: RecModel | None = None) -> TrainResult:
    model = model if model is not None else make_model(cfg, data)
    result = TrainResult(model)
    if not model.trainable:
        return result
    rng = np.random.default_rng(cfg.seed)
    u, i = data.pairs(0)
    seen = np.sort(u * np.int64(data.n_items) + i)
    optimiser = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=cfg.lr)
    stopper = EarlyStopping(model, cfg.patience, initial=-1.0)
    train_seconds = 0.0
    for epoch in range(1, cfg.epochs + 1):
        start = time.perf_counter()
        model.train()
        order = rng.permutation(len(u))
        neg = sample_negatives(u[order], model.negatives, data.n_items, seen, rng)
        users, pos, negs = torch.from_numpy(u[order]), torch.from_numpy(i[order]), torch.from_numpy(neg)
        total = 0.0
        for b in range(0, len(order), cfg.batch_size):
            sl = slice(b, b + cfg.batch_size)
            loss = model.loss(users[sl], pos[sl], negs[sl])
            objective = loss.rank + cfg.reg * loss.l2
            optimiser.zero_grad(set_to_none=True)
            objective.backward()
            optimiser.step()
            total += float(objective.detach()) * len(users[sl])
        train_seconds += time.perf_counter() - start
        valid = rank(model, data, 1, ks=(20,), batch=cfg.eval_batch)
        result.curve.append(
            {"epoch": epoch, "train_loss": total / len(order), "valid_recall@20": valid["recall@20"] or 0.0}
            | {"valid_ndcg@20": valid["ndcg@20"] or 0.0}
        )
        log.info("epoch %d: loss %.4f, valid recall@20 %.4f", epoch, total / len(order), valid["recall@20"] or 0.0)
        stop = stopper.step(valid["recall@20"] or 0.0, epoch)
        result.best_epoch = stopper.best_epoch
        if stop:
            break
    stopper.restore()
    result.seconds_per_epoch = train_seconds / max(len(result.curve), 1)
    return result


def final_metrics(model: RecModel, data: RecData, batch: int) -> dict[str, Any]:
    """``metrics/rec.json``'s numbers: test overall (top level) and cold (``cold``), users evaluated/skipped."""
    start = time.perf_counter()
    m = rank(model, data, 2, batch=batch, cold=True)
    seconds = time.perf_counter() - start
    out: dict[str, Any] = {k: v for k, v in m.items() if not k.startswith("cold/")}
    out["cold"] = {k.removeprefix("cold/"): v for k, v in m.items() if k.startswith("cold/")}
    out["users_skipped"] = out.pop("skipped")
    out["eval_seconds"] = round(seconds, 4)
    return out


def save_checkpoint(path: str | Path, model: RecModel, cfg: RecConfig) -> Path:
    """The state dict with what ``load_checkpoint`` needs to rebuild the model (with the same data)."""
    return save(
        {"model": cfg.model, "config": asdict(cfg), "sizes": asdict(model.sizes), "state": model.state_dict()}, path
    )


def load_checkpoint(path: str | Path, data: RecData) -> RecModel:
    blob = torch.load(path, map_location="cpu", weights_only=True)
    cfg = blob["config"]
    model = build(
        blob["model"],
        RecSizes(**{k: tuple(v) if isinstance(v, list) else v for k, v in blob["sizes"].items()}),
        graph(data),
        content(data, tuple(cfg["content"])),
    )
    model.load_state_dict(blob["state"])
    model.eval()
    return model

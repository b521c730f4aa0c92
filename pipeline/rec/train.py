"""The one training loop of every top-K model, its evaluation and checkpoints.

BPR-style training through the model contract (``models.rec.base``): each epoch shuffles the training
positives, draws ``model.negatives`` uniform negatives per positive that are never a training
positive of that user, and minimises ``loss.rank + reg * loss.l2`` with Adam (``rec.lr`` / ``rec.reg``,
or the model's own defaults where they are null). Every ``rec.eval_every`` epochs the model is refreshed
and ranked on the validation split (training positives masked); early stopping keeps the ranking with
the best validation Recall@20 and stops after ``rec.patience`` rankings without a better one, never
before ``rec.warmup`` epochs: on sparse data the validation recall is flat or noisy while the
embeddings spread out from their init, and a patience counted from epoch 1 quit there (issue 23).

A content model's cold scorer (a content profile) is trained first, in its own loop (``fit_cold_scorer``):
its scores are blended into every warm item's (``rec.profile_weight``), the model's validation rankings
included; after the model, the cold items' placement among the warm ones is fitted on the validation split
(``calibrate_cold``): the only split where items unseen in training have targets before the test.
Seeded (torch and numpy) and single-process, so the same params give the same weights, metrics and
checkpoint bytes.
"""

from __future__ import annotations

import itertools
import logging
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models.rec import MODELS, build
from models.rec.base import Content, Graph, RecModel, RecSizes
from pipeline.core.adam import Adam, ParamGroup
from pipeline.core.config import ConfigError
from pipeline.core.early_stop import EarlyStopping
from pipeline.core.tensors import save
from pipeline.rec.config import RecConfig
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
    curve: list[dict[str, float]] = field(default_factory=list)  # per ranking: epoch, train_loss, valid recall/ndcg@20
    seconds_per_epoch: float = 0.0  # training only (the validation ranking excluded)
    epochs: int = 0  # epochs trained
    content_from: int = 0  # staged models: the first epoch with the content on (0: not staged)


def defaults(cfg: RecConfig) -> RecConfig:
    """``cfg`` with its null ``lr`` / ``reg`` / ``dropout`` / ``mlp`` replaced by the model's own defaults."""
    cls = MODELS.get(cfg.model)
    return replace(
        cfg,
        lr=cls.lr if cfg.lr is None else cfg.lr,
        reg=cls.reg if cfg.reg is None else cfg.reg,
        dropout=cls.dropout if cfg.dropout is None else cfg.dropout,
        mlp=cls.mlp if cfg.mlp is None else cfg.mlp,
    )


def sizes(cfg: RecConfig, data: RecData) -> RecSizes:
    cfg = defaults(cfg)
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
    # copies: the tables' arrays are read-only views of Arrow buffers, which torch cannot share (it warns)
    return {m: (torch.tensor(data.features[m]), torch.tensor(data.present[m])) for m in chosen} or None


def make_model(cfg: RecConfig, data: RecData) -> RecModel:
    torch.manual_seed(cfg.seed)
    items = content(data, cfg.content)
    try:
        return build(cfg.model, sizes(cfg, data), graph(data), items)
    except ValueError as err:  # a builder's own check (content it needs, sizes it cannot use): the params' fault
        raise ConfigError(f"params rec.model {cfg.model!r}: {err}") from err


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
            model.ranked_scores,
            targets,
            exclude,
            data.n_items,
            ks=ks,
            batch=batch,
            cold=data.cold_items() if cold else None,
        )


def fit(cfg: RecConfig, data: RecData, model: RecModel | None = None) -> TrainResult:
    """Train ``model`` (built from ``cfg`` when None) and keep its best validation ranking.

    A staged model (``RecModel.staged``: the content models) trains in two phases, each up to
    ``rec.epochs`` with the warm-up and patience: its ID-only base first (``content_on`` False), then, from
    the base's best state, with its content on. The second phase keeps a state only when its validation
    Recall@20 beats the base's, so content that does not help the ranking is never kept (issue 23: on the
    realistic profile, trained jointly from the first epoch, every content model lost to LightGCN).

    A content model's cold scorer is trained before either phase, and every validation ranking blends its
    scores in with ``rec.profile_weight`` (``RecModel.blend_profile``): the epoch and phase kept are the best
    of the model as it is scored. Why a blend: on weakly aligned content the models' own content paths add
    little to the ID embeddings (trained on the same positives, the IDs fit them first), while a separately
    trained content profile ranks held-out items well enough to move a ranking (docs/stages/rec.md).
    """
    cfg = defaults(cfg)
    model = model if model is not None else make_model(cfg, data)
    result = TrainResult(model)
    if not model.trainable:
        return result
    rng = np.random.default_rng(cfg.seed)
    u, i = data.pairs(0)
    seen = np.sort(u * np.int64(data.n_items) + i)
    scorer = set(model.cold_scorer.parameters()) if model.cold_scorer is not None else set()  # its own loop
    groups = [ParamGroup.of([p for p in ps if p not in scorer], cfg.lr * scale) for ps, scale in model.lr_groups()]
    # one optimiser for both phases: parameters the base does not use get no gradient, so Adam skips them
    optimiser = Adam([g for g in groups if g.params])
    if model.cold_scorer is not None and (cfg.cold_calibration or cfg.profile_weight):
        # before the model: its validation rankings (early stopping, the content phase) rank with the blend
        fit_cold_scorer(model.cold_scorer, data, cfg)
        model.profile_weight.fill_(cfg.profile_weight)
    best, train_seconds, epoch = -1.0, 0.0, 0
    for content_on in (False, True) if model.staged else (True,):
        model.content_on = content_on
        stopper = EarlyStopping(model, cfg.patience, initial=best)
        first = epoch + 1
        if content_on and model.staged:
            result.content_from = first
        for epoch in range(first, first + cfg.epochs):
            start = time.perf_counter()
            loss = _epoch(model, optimiser, cfg, data.n_items, u, i, seen, rng)
            train_seconds += time.perf_counter() - start
            result.epochs = epoch
            if (epoch - first + 1) % cfg.eval_every and epoch != first + cfg.epochs - 1:
                continue
            valid = rank(model, data, 1, ks=(20,), batch=cfg.eval_batch)
            recall = valid["recall@20"] or 0.0
            result.curve.append(
                {
                    "epoch": epoch,
                    "train_loss": loss,
                    "valid_recall@20": recall,
                    "valid_ndcg@20": valid["ndcg@20"] or 0.0,
                }
            )
            log.info("epoch %d%s: loss %.4f, valid recall@20 %.4f", epoch, " (content)" * content_on, loss, recall)
            if stopper.step(recall, epoch) and epoch - first + 1 >= cfg.warmup:
                break
        stopper.restore()
        best = stopper.best
        result.best_epoch = stopper.best_epoch or result.best_epoch
    if model.staged:
        model.content_on = result.best_epoch >= result.content_from
        log.info(
            "content %s: the best validation ranking is epoch %d (content from epoch %d)",
            "kept" if model.content_on else "dropped",
            result.best_epoch,
            result.content_from,
        )
    result.seconds_per_epoch = train_seconds / max(result.epochs, 1)
    if model.cold_scorer is not None and cfg.cold_calibration:
        calibrate_cold(model, data, cfg.eval_batch, cfg.cold_budget)
    return result


def _epoch(model: RecModel, optimiser, cfg: RecConfig, n_items: int, u, i, seen, rng) -> float:
    """One pass over the shuffled training positives; returns the mean objective."""
    model.train()
    order = rng.permutation(len(u))
    neg = sample_negatives(u[order], model.negatives, n_items, seen, rng)
    users, pos, negs = torch.from_numpy(u[order]), torch.from_numpy(i[order]), torch.from_numpy(neg)
    total = 0.0
    for b in range(0, len(order), cfg.batch_size):
        sl = slice(b, b + cfg.batch_size)
        loss = model.loss(users[sl], pos[sl], negs[sl])
        objective = loss.rank + cfg.reg * loss.l2
        optimiser.zero_grad()
        objective.backward()
        optimiser.step()
        total += float(objective.detach()) * len(users[sl])
    return total / len(order)


COLD_LR = 1e-3  # the cold scorer's own Adam learning rate (a linear map: the models' rates overshoot it)
COLD_EPOCHS = 60  # at most: its validation ranking among cold items has peaked by 20-40 on both profiles


def fit_cold_scorer(scorer: torch.nn.Module, data: RecData, cfg: RecConfig) -> int:
    """Train the model's cold scorer (``models.rec.zoo._common.ContentProfile``) on the training positives,
    keeping the epoch whose scores rank the validation split's cold targets best *among the cold items*
    (Recall@20), with the loop's warm-up and patience; return that epoch.

    Its own loop, before the model's: the model stops when its warm ranking peaks, often after a few epochs
    on sparse data, long before a content map has learnt anything; and the model's validation rankings
    blend its scores in (``rec.profile_weight``). Its stopping reads the cold items alone: ranking held-out
    items from content is what it is for. Seeded with ``rec.seed`` + 1 (the model's loop: ``rec.seed``).
    """
    rng = np.random.default_rng(cfg.seed + 1)
    u, i = data.pairs(0)
    seen = np.sort(u * np.int64(data.n_items) + i)
    cold = data.cold_items()
    vu, vi = data.pairs(1)
    on_cold = cold[vi]
    if not on_cold.any():
        return 0
    position = np.cumsum(cold) - 1  # item code -> its index among the cold items
    targets = Pairs.of(vu[on_cold], position[vi[on_cold]], data.n_users)
    cold_t = torch.from_numpy(cold)
    optimiser = Adam([ParamGroup.of(scorer.parameters(), COLD_LR)])
    stopper = EarlyStopping(scorer, cfg.patience, initial=-1.0)
    last = min(cfg.epochs, COLD_EPOCHS)
    for epoch in range(1, last + 1):
        scorer.train()
        order = rng.permutation(len(u))
        neg = torch.from_numpy(sample_negatives(u[order], 1, data.n_items, seen, rng))
        users, pos = torch.from_numpy(u[order]), torch.from_numpy(i[order])
        for b in range(0, len(order), cfg.batch_size):
            sl = slice(b, b + cfg.batch_size)
            loss = scorer.loss(users[sl], pos[sl], neg[sl])
            optimiser.zero_grad()
            (loss.rank + cfg.reg * loss.l2).backward()
            optimiser.step()
        if epoch % cfg.eval_every and epoch != last:
            continue
        scorer.eval()
        with torch.no_grad():
            scorer.refresh()
            m = evaluate(lambda b: scorer.scores(b)[:, cold_t], targets, [], int(cold.sum()), ks=(20,))
        log.info("cold scorer epoch %d: validation recall@20 among cold items %.4f", epoch, m["recall@20"] or 0.0)
        if stopper.step(m["recall@20"] or 0.0, epoch) and epoch >= cfg.warmup:
            break
    stopper.restore()
    scorer.eval()
    return stopper.best_epoch


COLD_SPREADS = (0.5, 1.0, 2.0)  # calibrate_cold's grid, in units of a user's warm-score std
COLD_SHIFTS = (-2.0, -1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0)
COLD_SLOPES = (0.0, 0.5, 1.0)  # per std of the users' log activity


def calibrate_cold(model: RecModel, data: RecData, batch: int, budget: float = 0.0) -> tuple[float, float, float]:
    """Set ``model.cold_affine`` (spread, shift, slope: where a user's cold items stand among its warm ones, see
    ``RecModel.place_cold``) and return it: of the grid points (and "never ranked", shift -inf) whose
    validation Recall@20 is at least (1 - ``budget``) x the best one's, the one with the best validation
    cold Recall@20 (ties: the better overall Recall@20).

    The cold scorer ranks cold items among themselves, on its own scale; where they stand among the warm
    items no training positive says (a cold item is never one), and the validation split is the only one
    with cold targets before the test. Cold items are a small share of the targets and content ranks them
    far less precisely than interactions rank warm ones, so most placements that reach them cost some
    overall recall: ``budget`` (``rec.cold_budget``) is how much of it new items' exposure may cost.
    The slope (cold items higher for users with a longer history, whose content profile is an average
    over more items) moved that trade a long way on the realistic profile (docs/stages/rec.md).
    """
    cold = data.cold_items()
    if model.cold_scorer is None or not cold.any() or cold.all():
        return 0.0, 0.0, 0.0
    grid = [(1.0, float("-inf"), 0.0), *itertools.product(COLD_SPREADS, COLD_SHIFTS, COLD_SLOPES)]
    exclude = [Pairs.of(*data.pairs(0), data.n_users)]
    targets = Pairs.of(*data.pairs(1), data.n_users)
    scored = _validation_scores(model, data, int((targets.counts() > 0).sum()))
    results = []
    for point in grid:
        affine = torch.tensor(point)

        def placed(users: torch.Tensor, affine: torch.Tensor = affine) -> torch.Tensor:
            return model.place_cold(*scored(users), users, affine)

        m = evaluate(placed, targets, exclude, data.n_items, ks=(20,), batch=batch, cold=cold)
        results.append((m["recall@20"] or 0.0, m["cold/recall@20"] or 0.0, point))
        log.debug("cold placement %s: validation recall@20 %.4f, cold %.4f", point, *results[-1][:2])
    floor = (1.0 - budget) * max(r[0] for r in results)
    overall, on_cold, chosen = max((r for r in results if r[0] >= floor), key=lambda r: (r[1], r[0]))
    model.cold_affine.copy_(torch.tensor(chosen))
    log.info(
        "cold items: spread %s, shift %s, slope %s (validation recall@20 %.4f, cold %.4f; budget %.0f%% of the best %.4f)",
        *chosen,
        overall,
        on_cold,
        100 * budget,
        max(r[0] for r in results),
    )
    return chosen


CACHE_SCORES = 50_000_000  # calibrate_cold keeps the validation users' scores when there are at most this many


def _validation_scores(model: RecModel, data: RecData, n_users: int):
    """``users -> (scores, the profile blended in (B, n_items); cold items' profile scores (B, n_cold))`` for calibrate_cold's
    grid: computed once per batch of the ``n_users`` validation users and kept while they fit in
    ``CACHE_SCORES`` numbers (each grid point then only re-places the cold columns), else recomputed per point."""
    model.eval()
    with torch.no_grad():
        model.refresh()
    keep = n_users * (data.n_items + model.cold_index.numel()) <= CACHE_SCORES
    cache: dict[tuple[int, int], tuple[torch.Tensor, torch.Tensor]] = {}

    def scored(users: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        key = (int(users[0]), len(users))
        if key not in cache:
            with torch.no_grad():
                s, c = model.blended_scores(users)
                pair = (s, c.index_select(1, model.cold_index))
            if not keep:
                return pair
            cache[key] = pair
        return cache[key]

    return scored


def valid_metrics(model: RecModel, data: RecData, batch: int) -> dict[str, float | None]:
    """The validation split's Recall@20 and NDCG@20 of the model as it is scored (cold placement included)."""
    m = rank(model, data, 1, ks=(20,), batch=batch)
    return {"recall@20": m["recall@20"], "ndcg@20": m["ndcg@20"]}


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
    state = blob["state"]
    state.setdefault("profile_weight", torch.zeros(()))  # saved before the profile blend: none
    if state["cold_affine"].numel() == 2:  # saved before the placement had its activity slope: slope 0
        state = {**state, "cold_affine": torch.cat([state["cold_affine"], state["cold_affine"].new_zeros(1)])}
    model.load_state_dict(state)
    model.eval()
    return model

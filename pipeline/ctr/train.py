"""The one CTR training loop shared by every model, and its data plumbing.

Sample tables (``ctr_data``'s Parquet) are loaded once into column tensors; a batch is an index
gather on each column (no per-row Python). Content vectors come from ``paths.items`` aligned to
the item codes; sessions (``sess``, for models that read them) are cut from ``hist``/``hist_ts``.
Early stopping keeps the state with the best validation score (``ctr.monitor``: AUC or logloss).
The model's ``seen`` items are those of the training samples: any other is scored through the
shared unseen-item row.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from models.ctr import build
from models.ctr.base import CLIP_KEY, Content, CtrModel, CtrSizes, FeatureSpec
from pipeline.core import store
from pipeline.core.adam import Adam, ParamGroup
from pipeline.core.early_stop import EarlyStopping
from pipeline.core.tensors import save, slice_batch
from pipeline.ctr.clips import CLIPS, read_clips, skipped_at
from pipeline.ctr.config import CtrConfig, CtrSessionConfig, CtrTrendConfig
from pipeline.ctr.data import sessions
from pipeline.ctr.future import future_sequences, pearson_neighbours
from pipeline.ctr.metrics import auc, evaluate

log = logging.getLogger("ctr.train")
Batch = dict[str, torch.Tensor]


# reduce z-scores each dimension on the training split; a value beyond this many standard deviations
# is an artefact (e.g. a PCA component with ~zero training variance), not signal, and would swamp the model.
CONTENT_CLIP = 10.0


class ContentError(ValueError):
    """Content requested (ctr.use_content) but not usable."""


def table_tensors(table: pa.Table, spec: Mapping[str, Any]) -> Batch:
    """A sample table as column tensors (side features stacked: ``cat`` (N, C), ``multi`` (N, K, M), ``num`` (N, F)).

    ``spec``: the ``ctr_data`` spec (table metadata). Its field order (``FeatureSpec.field_names``), not
    the table's column order, decides the stacking, as it decides the order of the embedding tables.
    """
    n = table.num_rows

    def ints(name: str) -> torch.Tensor:
        return torch.from_numpy(table.column(name).to_numpy(zero_copy_only=False).astype(np.int64))

    def fixed(name: str) -> np.ndarray:
        return (
            store.vectors(table.column(name)).astype(np.int64)
            if n
            else np.zeros((0, table.schema.field(name).type.list_size), np.int64)
        )

    names = FeatureSpec.field_names(spec)
    cats = [f"c_{name}" for name in names["categorical"]]
    multis = [f"m_{name}" for name in names["multi"]]
    nums = [f"n_{name}" for name in names["numeric"]]
    missing = [c for c in (*cats, *multis, *nums) if c not in table.column_names]
    if missing:
        raise store.StoreError(f"sample table lacks the spec's side feature columns {missing}; rerun ctr_data")
    out = {
        "user": ints("user"),
        "item": ints("item"),
        "hist_len": ints("hist_len"),
        "hist": torch.from_numpy(fixed("hist")),
        "label": torch.from_numpy(table.column("label").to_numpy(zero_copy_only=False).astype(np.float32)),
        "cat": torch.from_numpy(
            np.stack([table.column(c).to_numpy(zero_copy_only=False) for c in cats], 1).astype(np.int64)
        )
        if cats
        else torch.zeros(n, 0, dtype=torch.long),
        "multi": torch.from_numpy(np.stack([fixed(c) for c in multis], 1))
        if multis
        else torch.zeros(n, 0, 1, dtype=torch.long),
        "num": torch.from_numpy(
            np.stack([table.column(c).to_numpy(zero_copy_only=False) for c in nums], 1).astype(np.float32)
        )
        if nums
        else torch.zeros(n, 0),
    }
    return out


def session_tensor(table: pa.Table, cfg: CtrSessionConfig) -> torch.Tensor:
    """``(N, cfg.count, cfg.length)`` item codes: each sample's history cut into sessions (``data.sessions``)."""
    if "hist_ts" not in table.column_names:
        raise store.StoreError("sample table lacks 'hist_ts' (history timestamps) that sessions need; rerun ctr_data")
    n, h = table.num_rows, table.schema.field("hist").type.list_size
    if not n:
        return torch.zeros(0, cfg.count, cfg.length, dtype=torch.long)
    codes = sessions(
        store.vectors(table.column("hist")).astype(np.int64).reshape(n, h),
        store.vectors(table.column("hist_ts")).astype(np.int64).reshape(n, h),
        table.column("hist_len").to_numpy(zero_copy_only=False),
        table.column("timestamp").to_numpy(zero_copy_only=False),
        cfg.gap_s,
        cfg.length,
        cfg.count,
    )
    return torch.from_numpy(codes)


def trend_tensors(tables: Mapping[str, pa.Table], cfg: CtrTrendConfig, spec: FeatureSpec) -> dict[str, Batch]:
    """Per split, what ``dmr`` reads beside the sample: ``ts`` (B,), ``hist_ts`` (B, H) and, with
    ``cfg.use_future``, the future sequence ``fut`` / ``fut_ts`` (B, ``cfg.future``) from the implicit user
    network (``pipeline.ctr.future``), both fitted on the training split's positives only."""
    if "hist_ts" not in tables["train"].column_names:
        raise store.StoreError("sample table lacks 'hist_ts' (history timestamps) that dmr needs; rerun ctr_data")

    def ints(table: pa.Table, name: str) -> np.ndarray:
        return table.column(name).to_numpy(zero_copy_only=False).astype(np.int64)

    def hist_ts(table: pa.Table) -> np.ndarray:
        n, h = table.num_rows, table.schema.field("hist_ts").type.list_size
        return (
            store.vectors(table.column("hist_ts")).astype(np.int64).reshape(n, h) if n else np.zeros((0, h), np.int64)
        )

    out = {s: {"ts": ints(t, "timestamp"), "hist_ts": hist_ts(t)} for s, t in tables.items()}
    if cfg.use_future:
        train = tables["train"]
        pos = ints(train, "label") == 1
        user, item, ts = (ints(train, c)[pos] for c in ("user", "item", "timestamp"))
        neighbours = pearson_neighbours(user, item, spec.n_users, spec.n_items, cfg.neighbours)
        for s, t in tables.items():
            fut, fut_ts = future_sequences(ints(t, "user"), out[s]["ts"], neighbours, user, ts, item, cfg.future)
            out[s] |= {"fut": fut, "fut_ts": fut_ts}
    if not any(t["hist_ts"].any() or ("fut" in t and t["fut"].any()) for t in out.values()):
        log.warning(
            "dmr: no sample has an earlier behaviour, its own or a similar user's (a source without timestamps, "
            "e.g. lattice?): its history and future trends are zeros, it scores from the target and side fields"
        )
    return {s: {k: torch.from_numpy(v) for k, v in t.items()} for s, t in out.items()}


def clip_tensors(
    folder: str | Path, vocab: pa.Table, tables: Mapping[str, pa.Table]
) -> tuple[Content, dict[str, torch.Tensor]]:
    """What ``frame`` reads beside the sample: the content entry ``CLIP_KEY`` (``(n_items + 1, C, K)`` clip
    vectors by item code, and their mask) from ctr_data's ``clips.parquet``, and per split ``skip`` (N,):
    clips watched through (``pipeline.ctr.clips.skipped_at``; -1 without a watch ratio)."""
    path = Path(folder) / CLIPS
    if not path.is_file():
        raise ContentError(
            f"{path}: no clip features: frame needs clips.parquet in ctr_data.path (stage log_data writes it with "
            "data.clips > 0 and visual.resnet152.keep_sequence: true; a dataset folder may hold its own)"
        )
    x, present = read_clips(path, vocab.column("video_id").to_pylist())
    target = vocab.column("item").to_numpy()
    n = int(target.max(initial=0)) + 1
    full, mask = np.zeros((n, *x.shape[1:]), np.float32), np.zeros(n, bool)
    full[target], mask[target] = x, present
    n_clips = x.shape[1]
    skips = {}
    for split, table in tables.items():
        if "watch_ratio" in table.column_names:
            ratio = table.column("watch_ratio").to_numpy(zero_copy_only=False).astype(np.float32)
        else:
            ratio = np.full(table.num_rows, np.nan, np.float32)
        skips[split] = torch.from_numpy(skipped_at(ratio, n_clips))
    if not any((k >= 0).any() for k in skips.values()):
        log.warning("frame: no sample has a watch time (the log's watch_time column): no clip-level loss or metric")
    return {CLIP_KEY: (torch.from_numpy(full), torch.from_numpy(mask))}, skips


@torch.inference_mode()
def predict_clips(model: CtrModel, data: Batch, batch_size: int) -> np.ndarray:
    """``(N, C)`` clip interest probabilities of a ``uses_clips`` model."""
    model.eval()
    n = len(data["label"])
    out = [
        torch.sigmoid(model.clip_interest(slice_batch(data, torch.arange(s, min(s + batch_size, n))))[0])
        for s in range(0, n, batch_size)
    ]
    return torch.cat(out).numpy() if out else np.zeros((0, model.n_clips), np.float32)


FEATURE_SOURCES = ("log", "mmrec", "lattice")  # the adapters that read item features


def load_content(items_path: str | Path, vocab: pa.Table, modalities: tuple[str, ...]) -> Content:
    """Per modality ``(n_items + 1, D)`` vectors by item code and a presence mask (absent items masked), from
    ctr_data's item features (``features.parquet``); ``modalities`` empty: every modality it has."""
    if not Path(items_path).is_file():
        raise ContentError(
            f"{items_path}: no item features: ctr_data.source {'/'.join(FEATURE_SOURCES)} give them (the video "
            "pipeline's, or a dataset's *_feat.npy); set ctr.use_content: false for a source without"
        )
    schema = store.read_schema(items_path)
    names, have = schema.names, list(store.modality_dims(schema))
    modalities = modalities or tuple(have)
    missing = [m for m in modalities if m not in have]
    if missing:
        raise ContentError(f"{items_path}: no modality column(s) {missing} (params ctr.content); it has {have}")
    target = vocab.column("item").to_numpy()  # each vocab entry's item code
    n = int(target.max(initial=0)) + 1
    content: Content = {}
    for m in modalities:
        got = store.read_vectors(
            items_path,
            m,
            align_to=vocab.column("video_id").to_pylist(),
            mask=f"{m}_present" if f"{m}_present" in names else None,
            expect={"stage": "ctr_data"},
            hint="params ctr.content",
        )
        full, mask = np.zeros((n, got.x.shape[1]), np.float32), np.zeros(n, bool)
        full[target], mask[target] = got.x, got.present  # absent or masked items: zeros, masked
        broken, far = ~np.isfinite(full), np.abs(full) > CONTENT_CLIP
        if broken.any():  # a broken feature store: worth the user's attention
            log.warning(
                "%s: %d non-finite values (%d items) read as +-%g", m, broken.sum(), broken.any(1).sum(), CONTENT_CLIP
            )
        if far.any():
            # expected, nothing to act on: items normalised with the training items' statistics can lie far
            # outside them (few training videos, a rare item); clipping keeps one item from dominating a batch
            log.info("%s: %d values (%d items) beyond +-%g sd: clipped", m, far.sum(), far.any(1).sum(), CONTENT_CLIP)
        if broken.any() or far.any():
            full = np.clip(
                np.nan_to_num(full, nan=0.0, posinf=CONTENT_CLIP, neginf=-CONTENT_CLIP), -CONTENT_CLIP, CONTENT_CLIP
            )
        content[m] = (torch.from_numpy(full), torch.from_numpy(mask))
    return content


@torch.inference_mode()
def predict(model: CtrModel, data: Batch, batch_size: int) -> np.ndarray:
    model.eval()
    n = len(data["label"])
    out = [
        torch.sigmoid(model(slice_batch(data, torch.arange(s, min(s + batch_size, n)))))
        for s in range(0, n, batch_size)
    ]
    return torch.cat(out).numpy() if out else np.zeros(0, np.float32)


@dataclass
class TrainResult:
    model: CtrModel
    curve: list[dict[str, float]] = field(default_factory=list)  # one row per epoch
    best_epoch: int = 0
    load_seconds: float = 0.0  # time spent slicing batches
    step_seconds: float = 0.0  # total time of the training steps (slicing included)
    train_samples: int = 0


# ctr.trends of a checkpoint written before dmr existed: none of its models reads them
NO_TRENDS = {"count": 1, "routing_iterations": 1, "use_future": False, "time_attention": False}
NO_FRAME = {"clip_weight": 0.0}  # ctr.frame of a checkpoint written before frame existed


def model_sizes(cfg: CtrConfig | dict[str, Any]) -> CtrSizes:
    """The model's layer sizes from the ``ctr.*`` params (or their dict, as a checkpoint stores them)."""
    raw = cfg if isinstance(cfg, dict) else asdict(cfg)
    sess, trends, frame = raw["sessions"], raw.get("trends") or NO_TRENDS, raw.get("frame") or NO_FRAME
    nested = {
        "session_count": sess["count"],
        "session_length": sess["length"],
        "trend_count": trends["count"],
        "routing_iterations": trends["routing_iterations"],
        "use_future": trends["use_future"],
        "time_attention": trends["time_attention"],
        "clip_weight": frame["clip_weight"],
    }
    names = [f.name for f in fields(CtrSizes) if f.name not in nested]
    plain = {k: tuple(raw[k]) if isinstance(raw[k], list | tuple) else raw[k] for k in names}
    return CtrSizes(**plain, **nested)


def seen_items(train: Batch, n_items: int) -> torch.Tensor:
    """``(n_items,)`` True for the target items of the training samples (``ctr_data``'s ``cold`` is the
    complement): the items whose own ID rows are trained; the model reads every other one, as a
    target or a behaviour, through the shared unseen-item row."""
    seen = torch.zeros(n_items, dtype=torch.bool)
    seen[train["item"]] = True
    seen[0] = True  # padding stays padding
    return seen


def fit(
    name: str, spec: FeatureSpec, cfg: CtrConfig, train: Batch, valid: Batch, content: Content | None
) -> TrainResult:
    torch.manual_seed(cfg.seed)
    model = build(name, spec, model_sizes(cfg), content)
    model.seen.copy_(seen_items(train, spec.n_items))
    opt = Adam(
        [ParamGroup.of(model.parameters(), cfg.lr)], weight_decay=cfg.weight_decay, fused=True
    )  # fused: ~8x faster step on CPU
    loss_fn = torch.nn.BCEWithLogitsLoss()
    gen = torch.Generator().manual_seed(cfg.seed)
    result = TrainResult(model)
    stopper = EarlyStopping(model, cfg.patience, -np.inf)
    n = len(train["label"])
    y_valid = valid["label"].numpy()
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        perm, total = torch.randperm(n, generator=gen), 0.0
        for s in range(0, n, cfg.batch_size):
            t0 = time.perf_counter()
            batch = slice_batch(train, perm[s : s + cfg.batch_size])
            t1 = time.perf_counter()
            loss = model.training_loss(batch) if model.uses_clips else loss_fn(model(batch), batch["label"])
            opt.zero_grad()
            loss.backward()
            opt.step()
            t2 = time.perf_counter()
            result.load_seconds += t1 - t0
            result.step_seconds += t2 - t0
            total += loss.detach().item() * len(batch["label"])
        result.train_samples += n
        p = predict(model, valid, 4 * cfg.batch_size)
        v_auc = auc(y_valid, p) if len(y_valid) else float("nan")
        v_loss = (
            evaluate(y_valid, p, valid["user"].numpy(), np.zeros(len(p), bool))["logloss"] if len(p) else float("nan")
        )
        result.curve.append(
            {"epoch": epoch, "train_logloss": total / max(n, 1), "valid_logloss": v_loss, "valid_auc": v_auc}
        )
        log.info(
            "%s epoch %d: train logloss %.4f, valid logloss %.4f, valid AUC %.4f",
            name,
            epoch,
            total / max(n, 1),
            v_loss,
            v_auc,
        )
        # Higher is better: AUC, or minus the logloss (also the fallback when AUC is undefined).
        score = v_auc if cfg.monitor == "auc" and np.isfinite(v_auc) else -v_loss
        stop = stopper.step(score, epoch)
        result.best_epoch = stopper.best_epoch
        if stop and epoch >= cfg.warmup:
            break
    stopper.restore()
    return result


def save_checkpoint(path: str | Path, model: CtrModel, name: str, spec: FeatureSpec, cfg: CtrConfig) -> Path:
    """State dict (content buffers included) with what ``load_checkpoint`` needs to rebuild the model."""
    content_dims = (
        {}
        if model.content is None
        else {
            n: [int(getattr(model.content, f"x{k}").shape[0]), int(getattr(model.content, f"x{k}").shape[1])]
            for k, n in enumerate(model.content.names)
        }
    )
    clip_dims = list(model.clip_x.shape) if model.uses_clips else None
    blob = {
        "clip_dims": clip_dims,
        "model": name,
        "spec": asdict(spec),
        "config": asdict(cfg),
        "content_dims": content_dims,
        "state": model.state_dict(),
    }
    return save(blob, path)


def load_checkpoint(path: str | Path) -> tuple[CtrModel, dict[str, Any]]:
    blob = torch.load(path, map_location="cpu", weights_only=True)
    spec = FeatureSpec(**{k: tuple(v) if isinstance(v, list) else v for k, v in blob["spec"].items()})
    content = {n: (torch.zeros(r, d), torch.zeros(r, dtype=torch.bool)) for n, (r, d) in blob["content_dims"].items()}
    if blob.get("clip_dims"):
        content[CLIP_KEY] = (torch.zeros(blob["clip_dims"]), torch.zeros(blob["clip_dims"][0], dtype=torch.bool))
    model = build(blob["model"], spec, model_sizes(blob["config"]), content or None)
    model.load_state_dict(blob["state"])
    model.eval()
    return model, blob

"""Assemble the classifier's inputs: labels and splits from ``items.parquet``, one input per modality.

Reads ``paths.items`` (reduce: video_id, split, label, has_audio, reduced vectors + ``<m>_present``)
and, where ``classify.<m>.input`` is ``sequence``, the visual store's per-frame ResNet-152 column
(``visual.resnet152.keep_sequence``) or the audio store's ``logmel_segments`` (with ``project``,
through reduce's fitted state in ``paths.reduce_state``); with a backbone, the
decoded frames. Stores are read through ``store.read_table`` only. Videos without a label are
excluded and counted; a video with none of the modalities is kept (all masked); a single class, or a class absent from the training split, is an error.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.classify.model import BranchSpec
from pipeline.core import store
from pipeline.decode.decoded import iter_decoded
from pipeline.params import Params
from pipeline.reduce.fit import load_states
from pipeline.visual.extractor import output_paths

log = logging.getLogger("classify.data")
SPLITS = ("train", "valid", "test")


class LabelError(ValueError):
    """Labels that cannot train a classifier (one class, a class never seen in training)."""


@dataclass
class ClassifyData:
    video_ids: list[str]
    split: np.ndarray  # (N,) train | valid | test
    y: np.ndarray  # (N,) int64 class index
    classes: tuple[str, ...]
    inputs: dict[str, np.ndarray]  # modality -> (N, T, D) | (N, D) | (N, T, S, S, 3) uint8
    masks: dict[str, np.ndarray]  # modality -> (N,) bool: the video has this signal
    branches: tuple[BranchSpec, ...]
    n_missing_labels: int
    n_no_input: int  # labelled videos with none of the modalities (kept: predicted from the masks alone)


def encode_labels(labels: list[str | None], split: np.ndarray) -> tuple[np.ndarray, tuple[str, ...], np.ndarray]:
    """Class indices, sorted class names, and the mask of labelled rows; checks the classes are learnable."""
    labelled = np.array([lab is not None and lab != "" for lab in labels], bool)
    classes = tuple(sorted({lab for lab, ok in zip(labels, labelled) if ok}))
    if len(classes) < 2:
        raise LabelError(
            f"the labelled videos hold {len(classes)} class(es) {list(classes)}: a classifier needs at least two"
        )
    seen = {lab for lab, ok, s in zip(labels, labelled, split) if ok and s == "train"}
    absent = [c for c in classes if c not in seen]
    if absent:
        raise LabelError(
            f"class(es) {absent} have no video in the training split; re-split (ingest.split) or add labelled videos"
        )
    index = {c: i for i, c in enumerate(classes)}
    y = np.array([index[lab] if ok else -1 for lab, ok in zip(labels, labelled)], np.int64)
    return y, classes, labelled


def sequence_source(params: Params, modality: str) -> tuple[str, str, dict, str | None, str]:
    """Where a modality's sequence lives: (path, column, expected metadata, mask column, how to fix)."""
    paths = params.paths
    if modality == "visual":
        column = f"resnet152_{params.visual.sections['resnet152'].output}_seq"
        return (
            str(output_paths(paths.visual_features, "resnet152")[0]),
            column,
            {"stage": "visual", "extractor": "resnet152"},
            None,
            "set visual.resnet152.keep_sequence: true and run dvc repro, or classify.visual.input: vector",
        )
    return (
        paths.audio_features,
        "logmel_segments",
        {"stage": "audio"},
        "has_audio",
        "add logmel_segments to audio.feature_sets, or set classify.audio.input: vector",
    )


def project(x: np.ndarray, mask: np.ndarray, state_dir: str, name: str, modality: str) -> np.ndarray:
    """Every step of ``(N, T, D)`` through reduce's fitted transform of ``name`` -> ``(N, T, K)``.

    Per-frame features share the space of their mean (the vector reduce fitted on the training
    split), so the same PCA + normaliser applies; it keeps the training split's few dozen videos
    from meeting thousands of raw, heavy-tailed dimensions (random-weight ResNet activations).
    """
    states, _ = load_states(state_dir)
    if name not in states:
        raise store.StoreError(
            f"{state_dir}: no fitted reduce state {name!r} (params classify.{modality}.vector); it has {sorted(states)}"
        )
    state = states[name]
    if state.mean.shape[0] != x.shape[-1]:
        raise store.StoreError(
            f"classify.{modality}.project: reduce state {name!r} takes {state.mean.shape[0]}-d "
            f"vectors, the sequence has {x.shape[-1]}-d steps; set project: false"
        )
    n, t, d = x.shape
    y = state.transform(x.reshape(n * t, d)).reshape(n, t, -1)  # (N*T, D) -> (N, T, K)
    y[~mask] = 0.0
    return y


def load_frames(root: str | Path, ids: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Decoded frames ``(N, T, S, S, 3)`` uint8 in ``ids`` order (for a fine-tuned backbone)."""
    got = {
        v.video_id: v.frames
        for v in iter_decoded(root, frames=True, audio=False, video_ids=ids)
        if v.frames is not None
    }
    if not got:
        raise store.StoreError(f"{root}: no decoded frames for the labelled videos; run dvc repro")
    shape = next(iter(got.values())).shape
    frames = np.zeros((len(ids), *shape), np.uint8)
    mask = np.zeros(len(ids), bool)
    for i, vid in enumerate(ids):
        if vid in got:
            frames[i], mask[i] = got[vid], True
    return frames, mask


def load_data(params: Params) -> ClassifyData:
    cfg = params.classify
    items = store.read_table(params.paths.items, expect={"stage": "reduce"})
    ids = items.column("video_id").to_pylist()
    split = np.asarray(items.column("split").to_pylist(), dtype=object)
    y, classes, labelled = encode_labels(items.column("label").to_pylist(), split)
    n_missing = int((~labelled).sum())
    if n_missing:
        log.warning("%d video(s) without a label: excluded from training and evaluation", n_missing)
    inputs, masks, branches = {}, {}, []
    for m in cfg.modalities:
        mcfg = getattr(cfg, m)
        if m == "visual" and cfg.backbone != "none":
            x, mask = load_frames(params.paths.decoded, ids)
            kind, agg = "frames", mcfg.aggregation
        elif mcfg.input == "sequence":
            path, column, expect, mask_col, hint = sequence_source(params, m)
            got = store.read_vectors(path, column, align_to=ids, mask=mask_col, expect=expect, hint=hint)
            x, mask = got.x, got.present  # (N, T, D)
            if mcfg.project:
                x = project(x, mask, params.paths.reduce_state, mcfg.vector, m)  # (N, T, K)
            kind, agg = "sequence", mcfg.aggregation
        else:
            present_col = f"{mcfg.vector}_present"
            got = store.read_vectors(
                params.paths.items,
                mcfg.vector,
                align_to=ids,
                mask=present_col if present_col in items.column_names else None,
                hint=f"params classify.{m}.vector",
            )
            x, mask = got.x, got.present  # (N, D)
            kind, agg = "vector", mcfg.aggregation
        inputs[m], masks[m] = x, mask
        branches.append(BranchSpec(m, kind, tuple(int(d) for d in x.shape[1:]), agg))
    any_input = np.logical_or.reduce([masks[m] for m in cfg.modalities])
    keep = labelled
    n_no_input = int((labelled & ~any_input).sum())
    if n_no_input:  # kept, so every configuration is scored on the same videos: the model sees "all absent"
        log.warning("%d labelled video(s) have none of the modalities %s", n_no_input, list(cfg.modalities))
    for b in branches:
        log.info(
            "%s: %s %s, present in %d of %d videos",
            b.modality,
            b.kind,
            b.shape,
            int(masks[b.modality][keep].sum()),
            int(keep.sum()),
        )
    return ClassifyData(
        [v for v, k in zip(ids, keep) if k],
        split[keep],
        y[keep],
        classes,
        {m: x[keep] for m, x in inputs.items()},
        {m: k[keep] for m, k in masks.items()},
        tuple(branches),
        n_missing,
        n_no_input,
    )


def normaliser(x: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and std (last axis) over ``rows``; a constant feature gets std 1."""
    sel = x[rows].reshape(-1, x.shape[-1]).astype(np.float64)  # (rows * T, D)
    if not len(sel):
        return np.zeros(x.shape[-1], np.float32), np.ones(x.shape[-1], np.float32)
    std = sel.std(0)
    return sel.mean(0).astype(np.float32), np.where(std > 1e-6, std, 1.0).astype(np.float32)

"""Assemble the item-feature table: every modality reduced and aligned to the manifest's videos.

Reads the manifest and one feature store per enabled modality; returns the table written to
``items.parquet`` (``video_id, split, label, has_audio``, then per modality a
``fixed_size_list<float32>[K]`` column and a ``<modality>_present`` mask), the fitted states,
each modality's cumulative explained-variance curve, and metrics.

Missing data rule (``reduce.missing``): a video absent from a modality's store is zero-filled
with ``present = false`` (``zero``) or dropped from the table (``drop``). A video a store marks
as having no such signal (audio stores: ``has_audio = false``) is always zero-filled and masked,
never dropped, and never used for fitting. Fitting uses training-split rows only.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pyarrow as pa

from pipeline.audio.features import FEATURE_SETS
from pipeline.core import store
from pipeline.core.modality import ModalityReduceConfig
from pipeline.decode.decoded import DECODE_ERRORS
from pipeline.joint import feature as joint
from pipeline.params import Params
from pipeline.reduce.config import ReduceConfig
from pipeline.reduce.fit import ModalityState, fit_modality
from pipeline.visual.extractor import EXTRACTORS, output_paths


@dataclass(frozen=True)
class Source:
    path: str
    column: str
    mask: str | None = None  # bool column: false rows carry no signal (e.g. has_audio)
    expect: dict[str, Any] = field(default_factory=dict)  # metadata the store must carry


def modality_configs(params: Params) -> dict[str, ModalityReduceConfig]:
    """Every modality the enabled stages produce, in column order (visual.extractors, joint.features, then
    the vector audio feature sets): its ``reduce.<name>`` section, or the defaults its extractor or feature set declares,
    with the column resolved. Disabled ones (``enabled: false``) are left out."""
    given = params.reduce.modalities
    out: dict[str, ModalityReduceConfig] = {}
    for name in params.visual.extractors:
        extractor = EXTRACTORS.get(name)
        cfg = given.get(name, extractor.reduce_defaults)
        out[name] = replace(cfg, column=cfg.column or extractor.vector_column(params.visual.sections[name]))
    for name in params.joint.features:
        cfg = given.get(name, joint.JOINTS.get(name).reduce_defaults)
        out[name] = replace(cfg, column=cfg.column or name)
    for name, spec in FEATURE_SETS.members().items():
        if spec.reduce_defaults is not None and name in params.audio.feature_sets:
            cfg = given.get(name, spec.reduce_defaults)
            out[name] = replace(cfg, column=cfg.column or name)
    return {name: cfg for name, cfg in out.items() if cfg.enabled}


def modality_sources(params: Params) -> dict[str, Source]:
    """Where each enabled modality's vectors live (paths from params.yaml) and what the store must say."""
    sources = {}
    for name, cfg in modality_configs(params).items():
        if name in FEATURE_SETS:
            sources[name] = Source(params.paths.audio_features, cfg.column, "has_audio", {"stage": "audio"})
        elif name in params.joint.features:
            path = joint.output_paths(params.paths.joint_features, name)[0]
            sources[name] = Source(str(path), cfg.column, None, {"joint": name})
        else:
            path = output_paths(params.paths.visual_features, name)[0]
            sources[name] = Source(str(path), cfg.column, None, {"extractor": name})
    return sources


def decode_flags(sources: dict[str, Source], ids: list[str]) -> np.ndarray:
    """Per video of ``ids``: decode's ``decode_errors`` as the stores carry it (the largest any says), -1
    where none knows (a store written before the flag existed, or the video in none)."""
    out = np.full(len(ids), -1, np.int64)
    at = {v: k for k, v in enumerate(ids)}
    for src in sources.values():
        if DECODE_ERRORS not in store.read_schema(src.path).names:
            continue
        table = store.read_table(src.path, columns=["video_id", DECODE_ERRORS])
        for vid, n in zip(table.column("video_id").to_pylist(), table.column(DECODE_ERRORS).to_pylist()):
            if n is not None and vid in at:
                out[at[vid]] = max(out[at[vid]], n)
    return out


def build_items(
    manifest: pa.Table,
    sources: dict[str, Source],
    cfg: ReduceConfig,
    configs: dict[str, ModalityReduceConfig] | None = None,
) -> tuple[pa.Table, dict[str, ModalityState], dict[str, np.ndarray], dict[str, Any]]:
    ids = manifest.column("video_id").to_pylist()
    split = np.asarray(manifest.column("split").to_pylist())
    keep = np.ones(len(ids), bool)
    aligned: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    metrics: dict[str, Any] = {}
    for name, src in sources.items():
        got = store.read_vectors(
            src.path,
            src.column,
            align_to=ids,
            mask=src.mask,
            expect=src.expect,
            hint=f"params key reduce.{name}.column",
        )
        full = got.x.reshape(len(ids), -1)  # (N_manifest, D)
        in_store, mask = got.found, got.present
        aligned[name] = (full, mask)
        metrics[name] = {
            "missing": int((~in_store).sum()),
            "no_signal": int((in_store & ~mask).sum()),
            "not_in_manifest": got.n_rows - int(in_store.sum()),
        }
        if cfg.missing == "drop":
            keep &= in_store
    states, curves, columns = {}, {}, {}
    for name, (full, mask) in aligned.items():
        train = keep & mask & (split == "train")
        state, curve = fit_modality(
            full[train],
            (configs or cfg.modalities)[name],
            name,
            solver=cfg.solver,
            cap=cfg.too_many_components == "cap",
            seed=cfg.seed,
            max_fit_mb=cfg.max_fit_mb,
            batch_rows=cfg.batch_rows,
        )
        y = state.transform(full[keep])  # (N_kept, K)
        y[~mask[keep]] = 0.0
        states[name] = state
        if curve is not None:
            curves[name] = curve
        columns[name] = store.vector_array(y)
        columns[f"{name}_present"] = pa.array(mask[keep])
        metrics[name] |= {k: state.info[k] for k in ("input_dim", "n_components", "explained_variance", "n_train")}
        metrics[name]["capped"] = bool(state.info["capped"])  # every fit path sets it (as it logs a cap)
    base = manifest.filter(pa.array(keep)).select(["video_id", "split", "label", "has_audio"])
    # decode's flag, so a user can filter damaged clips here too (null: unknown)
    flags = {DECODE_ERRORS: pa.array([None if v < 0 else int(v) for v in decode_flags(sources, ids)[keep]], pa.int32())}
    table = pa.table({**{c: base.column(c) for c in base.column_names}, **flags, **columns})
    metrics["n_videos"] = int(keep.sum())
    metrics["dropped"] = int((~keep).sum())
    return table, states, curves, metrics

"""Stage ``log_data``: the video pipeline's interaction log with its own item table, as one dataset folder.

Reads ``data.interactions`` (checked cell by cell, as every source is), the ingest manifest
(``paths.manifest``: the item list and its side columns) and ``reduce``'s item table (``paths.items``:
every modality's reduced vector and mask). Writes ``paths.log_data``: ``interactions.parquet`` and
``items.parquet`` (manifest columns + vectors + ``<m>_present``; a video that reduce dropped has zeros,
masked), which ``ctr_data`` reads with ``ctr_data.source: log`` and ``ctr_data.path`` pointing here; and,
with ``data.clips`` > 0 and resnet152's per-frame sequence kept (``visual.resnet152.keep_sequence``),
``clips.parquet``: per video, ``data.clips`` clip vectors (the frames of each equal segment averaged,
``pipeline.ctr.clips``), projected through reduce's fitted resnet152 transform (``paths.reduce_state``),
for ``frame``.

Why a folder (issue 24): a stage's DVC deps cannot follow a param, so ``ctr_data`` depends on
``${ctr_data.path}`` alone. With the default path (this folder) DVC runs the video stages first; with
``-S ctr_data.path=<a dataset folder>`` none of them is upstream of ``ctr_train``, so an experiment on a
public dataset runs no video stage and needs no regenerated ``dvc.yaml``.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pyarrow as pa

from pipeline.core import store
from pipeline.core.cli import run_stage
from pipeline.core.config import ConfigError
from pipeline.ctr import clips
from pipeline.datasets import SourceError
from pipeline.datasets.adapters.log import FILES, STAGE, read_log_file
from pipeline.decode.decoded import DECODE_ERRORS
from pipeline.params import Params, load_params
from pipeline.reduce.fit import load_states
from pipeline.visual.extractor import output_paths

log = logging.getLogger("stage.log_data")


def items_table(manifest: pa.Table, items_path: str | Path) -> pa.Table:
    """The manifest's rows and columns, with reduce's vector columns and masks aligned by ``video_id`` (a
    video reduce dropped: zeros, masked) and decode's ``decode_errors`` flag (null where unknown)."""
    ids = manifest.column("video_id").to_pylist()
    schema = store.read_schema(items_path)
    out = manifest
    if DECODE_ERRORS in schema.names:
        flags = store.read_table(items_path, columns=["video_id", DECODE_ERRORS], expect={"stage": "reduce"})
        by_id = dict(zip(flags.column("video_id").to_pylist(), flags.column(DECODE_ERRORS).to_pylist()))
        out = out.append_column(DECODE_ERRORS, pa.array([by_id.get(v) for v in ids], pa.int32()))
    for m in store.modality_dims(schema):
        mask = f"{m}_present" if f"{m}_present" in schema.names else None
        got = store.read_vectors(items_path, m, align_to=ids, mask=mask, expect={"stage": "reduce"})
        out = out.append_column(m, store.vector_array(got.x.reshape(len(ids), -1)))
        out = out.append_column(f"{m}_present", pa.array(got.present))
    return out


def clip_features(params: Params, ids: list[str]) -> pa.Table | None:
    """Per video, ``data.clips`` clip vectors from resnet152's per-frame sequence (None: none to cut)."""
    n_clips, visual = params.data.clips, params.visual
    if not n_clips:
        return None
    path = output_paths(params.paths.visual_features, "resnet152")[0]
    if "resnet152" not in visual.extractors or not visual.sections["resnet152"].keep_sequence or not path.exists():
        log.warning("no clips.parquet: frame needs visual.resnet152 in visual.extractors with keep_sequence: true")
        return None
    column = f"resnet152_{visual.sections['resnet152'].output}_seq"
    got = store.read_vectors(path, column, align_to=ids, expect={"stage": "visual", "extractor": "resnet152"})
    states, _ = load_states(params.paths.reduce_state)
    if "resnet152" not in states:
        raise store.StoreError(f"{params.paths.reduce_state}: no fitted reduce state 'resnet152' to project clips with")
    # Each frame through reduce's fitted transform of the video-level vector (frames share its space, as
    # classify's sequences do): a few dozen components, not 2048 raw, heavy-tailed dimensions per clip.
    n, f, d = got.x.shape
    frames = states["resnet152"].transform(got.x.reshape(n * f, d)).reshape(n, f, -1)
    return clips.clip_table(ids, clips.clip_grid(frames, n_clips), got.present)


def main() -> None:
    params = load_params()
    if not params.data.interactions:
        raise ConfigError("data.interactions is null: the video pipeline has no interaction log to export")
    raw = read_log_file(Path(params.data.interactions))
    manifest = store.read_table(params.paths.manifest, expect={"stage": "ingest"})
    items = items_table(manifest, params.paths.items)
    out = Path(params.paths.log_data)
    dims = store.modality_dims(items.schema)
    meta = store.make_meta(STAGE, params={"interactions": params.data.interactions}, dims=dims)
    store.write_table(raw.interactions, out / FILES[0], meta)
    store.write_table(items, out / FILES[1], meta)
    (out / clips.CLIPS).unlink(missing_ok=True)
    table = clip_features(params, manifest.column("video_id").to_pylist())
    if table is not None:
        shape = (params.data.clips, table.schema.field(clips.COLUMN).type.list_size // params.data.clips)
        clips.write_clips(table, out / clips.CLIPS, STAGE, shape, {"clips": params.data.clips})
        log.info("clips.parquet: %d clips x %d dims per video", *shape)
    log.info(
        "%d interactions, %d items, modalities %s -> %s", raw.interactions.num_rows, items.num_rows, sorted(dims), out
    )


if __name__ == "__main__":
    sys.exit(run_stage(main, (ConfigError, SourceError, store.StoreError)))

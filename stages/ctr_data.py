"""Stage ``ctr_data``: interaction samples for the CTR models, and the item features they may use.

Reads ``ctr_data.path`` with the adapter ``ctr_data.source`` names (``log``: stage ``log_data``'s folder,
the video pipeline's interactions with the manifest and reduce's item features; ``mmrec``, ``lattice``,
``movielens``, ``amazon``: layouts in ``pipeline/datasets/adapters/``). Writes ``paths.ctr_data``:
``train|valid|test.parquet`` (one row per sample), ``users.parquet`` and ``items.parquet`` (code <-> id),
``summary.json`` (counts: dropped, duplicates, cold samples) and, when the source has item features,
``features.parquet`` (one vector column and ``<m>_present`` mask per modality, by ``video_id``): a
dataset's own ``*_feat.npy`` through PCA + normaliser (``ctr_data.content``) fitted on the items with a
training positive (state in ``features_state/``), the video pipeline's as reduce wrote them; and, when the
source folder holds ``clips.parquet`` (per-clip visual vectors, ``pipeline.ctr.clips``), ``clips.parquet``
with one row per item code (``frame`` reads it).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from pipeline.core import store
from pipeline.core.cli import run_stage
from pipeline.core.config import ConfigError
from pipeline.ctr import clips
from pipeline.ctr.adapters import SourceError, read_source
from pipeline.ctr.build import FEATURES, build_samples, features_meta, item_features, write_built
from pipeline.ctr.data import DataError
from pipeline.params import load_params
from pipeline.reduce.fit import save_states

log = logging.getLogger("stage.ctr_data")


def main() -> None:
    params = load_params()
    cfg = params.ctr_data
    raw = read_source(cfg.source, cfg.path, cfg.label)
    built = build_samples(raw, cfg)
    out = Path(params.paths.ctr_data)
    write_built(built, out, {"ctr_data": cfg})
    features, states = item_features(raw, built, cfg)
    (out / FEATURES).unlink(missing_ok=True)
    if features is not None:
        meta = features_meta(features, cfg, raw.reduced)
        store.write_table(features, out / FEATURES, meta)
        save_states(out / "features_state", states, {"stage": "ctr_data"})
        how = "reduced by reduce" if raw.reduced else "fitted on training items"
        log.info("item features: %s (%s)", meta["dims"], how)
    (out / clips.CLIPS).unlink(missing_ok=True)
    source_clips = Path(cfg.path) / clips.CLIPS
    if source_clips.is_file():
        table = clips.align_to_codes(source_clips, built.items)
        shape = store.read_meta(source_clips)["dims"][clips.COLUMN]
        clips.write_clips(table, out / clips.CLIPS, "ctr_data", tuple(shape), {"path": cfg.path})
        log.info("clip features: %d clips x %d dims per item", *shape)
    s = built.summary
    log.info(
        "%s: %d interactions -> train %d / valid %d / test %d samples (%d cold in test); %d users, %d items; "
        "dropped %d unknown videos, %d unknown users, %d duplicates",
        cfg.source,
        s["interactions_in"],
        s["train_samples"],
        s["valid_samples"],
        s["test_samples"],
        s["test_cold_samples"],
        s["users"],
        s["items"],
        s.get("unknown_videos", 0),
        s.get("unknown_users", 0),
        s["duplicates_dropped"],
    )


if __name__ == "__main__":
    sys.exit(run_stage(main, (ConfigError, SourceError, DataError, store.StoreError)))

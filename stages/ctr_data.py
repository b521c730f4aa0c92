"""Stage ``ctr_data``: interaction samples for the CTR models.

Reads the source named by ``ctr_data.source``: ``log`` = ``data.interactions`` with the ingest
manifest (``paths.manifest``, when present) as its item table, or an adapter's files at
``ctr_data.path`` (``movielens``, ``amazon``; layouts in ``pipeline/ctr/adapters.py``). Writes
``paths.ctr_data``: ``train|valid|test.parquet`` (one row per sample), ``users.parquet`` and
``items.parquet`` (code <-> id) and ``summary.json`` (counts: dropped, duplicates, cold samples).
"""

from __future__ import annotations

import dataclasses
import logging
import sys
from pathlib import Path

from pipeline.core import store
from pipeline.core.cli import run_stage
from pipeline.core.config import ConfigError
from pipeline.ctr.adapters import SourceError, read_source
from pipeline.ctr.build import build_samples, write_built
from pipeline.ctr.data import DataError
from pipeline.params import load_params

log = logging.getLogger("stage.ctr_data")


def main() -> None:
    params = load_params()
    cfg = params.ctr_data
    if cfg.source == "log":
        if not params.data.interactions:
            raise ConfigError("ctr_data.source is log but data.interactions is null")
        raw = read_source("log", params.data.interactions, cfg.label)
        if Path(params.paths.manifest).exists():
            raw = dataclasses.replace(raw, items=store.read_table(params.paths.manifest, expect={"stage": "ingest"}))
    else:
        if not cfg.path:
            raise ConfigError(f"ctr_data.source is {cfg.source}: set ctr_data.path to its files")
        raw = read_source(cfg.source, cfg.path, cfg.label)
    built = build_samples(raw, cfg)
    write_built(built, params.paths.ctr_data, {"ctr_data": cfg, "interactions": params.data.interactions})
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

"""Stage ``rec_data``: a dataset's interactions and item features as top-K tables.

Reads the source named by ``rec_data.source``: an adapter's files at ``rec_data.path`` (``mmrec``,
``lattice``, ``movielens``, ``amazon``; layouts in ``pipeline/datasets/adapters/``; the default is the
synthetic dataset of stage ``rec_sample``), or ``log`` = ``data.interactions`` with the reduced item
features ``paths.items`` of the video stages. Writes ``paths.rec_data``: ``interactions.parquet``
(user, item codes, split), ``users.parquet`` / ``items.parquet`` (code <-> id; the item table holds
one vector column per modality, as ``reduce`` writes it), ``features_state/`` (the fitted PCA +
normaliser) and ``summary.json`` (the counted rules of ``pipeline.rec.data``).
"""

from __future__ import annotations

import logging
import sys

import numpy as np
import pyarrow as pa

from pipeline.core import store
from pipeline.core.cli import run_stage
from pipeline.core.config import ConfigError
from pipeline.datasets import RawData, SourceError, read_source
from pipeline.params import Params, load_params
from pipeline.rec import data as rec_data
from pipeline.reduce.fit import save_states

log = logging.getLogger("stage.rec_data")


def video_source(params: Params) -> RawData:
    """``log``: the interaction log, and as item list and features the reduce stage's item table."""
    if not params.data.interactions:
        raise ConfigError("rec_data.source is log but data.interactions is null")
    raw = read_source("log", params.data.interactions, params.rec_data.label)
    items = store.read_table(params.paths.items, expect={"stage": "reduce"})
    vectors = [c for c in items.column_names if pa.types.is_fixed_size_list(items.schema.field(c).type)]
    features = {}
    for name in vectors:
        x = store.vectors(items.column(name))
        present = f"{name}_present"
        if present in items.column_names:  # reduce zero-filled what a store lacked: keep its mask
            x = np.where(items.column(present).to_numpy(zero_copy_only=False)[:, None], x, 0.0)
        features[name] = x.astype(np.float32)
    return RawData(raw.interactions, None, items.select(["video_id"]), features)


def main() -> None:
    params = load_params()
    cfg = params.rec_data
    if cfg.source == "log":
        raw, reduced = video_source(params), True
    else:
        raw, reduced = read_source(cfg.source, cfg.path, cfg.label), False
    data, states = rec_data.build(raw, cfg, reduced=reduced)
    rec_data.write(data, params.paths.rec_data, {"rec_data": cfg, "interactions": params.data.interactions})
    save_states(f"{params.paths.rec_data}/features_state", states, {"stage": "rec_data"})
    s = data.summary
    log.info(
        "%s: %d users x %d items; train %d / valid %d / test %d interactions (%d test on %d cold items); "
        "dropped %d duplicates, %d interactions of %d users unseen in training; modalities %s",
        cfg.source,
        s["users"],
        s["items"],
        s["train_interactions"],
        s["valid_interactions"],
        s["test_interactions"],
        s["test_cold_interactions"],
        s["cold_items"],
        s["duplicates_dropped"],
        s["unseen_user_interactions"],
        s["unseen_users"],
        s["modalities"],
    )


if __name__ == "__main__":
    sys.exit(run_stage(main, (ConfigError, SourceError, rec_data.DataError, store.StoreError)))

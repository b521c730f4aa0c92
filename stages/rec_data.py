"""Stage ``rec_data``: a dataset's interactions and item features as top-K tables.

Reads the source named by ``rec_data.source``: an adapter's files at ``rec_data.path`` (``mmrec``,
``lattice``, ``movielens``, ``amazon``; layouts in ``pipeline/datasets/adapters/``; the default is the
synthetic dataset of stage ``rec_sample``), or ``log`` with ``rec_data.path`` = ``paths.log_data``:
stage ``log_data``'s folder, the video pipeline's interactions with reduce's item features. Writes ``paths.rec_data``: ``interactions.parquet``
(user, item codes, split), ``users.parquet`` / ``items.parquet`` (code <-> id; the item table holds
one vector column per modality, as ``reduce`` writes it), ``features_state/`` (the fitted PCA +
normaliser) and ``summary.json`` (the counted rules of ``pipeline.rec.data``).
"""

from __future__ import annotations

import logging
import sys

from pipeline.core import store
from pipeline.core.cli import run_stage
from pipeline.core.config import ConfigError
from pipeline.datasets import SourceError, read_source
from pipeline.params import load_params
from pipeline.rec import data as rec_data
from pipeline.reduce.fit import save_states

log = logging.getLogger("stage.rec_data")


def main() -> None:
    params = load_params()
    cfg = params.rec_data
    raw = read_source(cfg.source, cfg.path, cfg.label)
    data, states = rec_data.build(raw, cfg)
    rec_data.write(data, params.paths.rec_data, {"rec_data": cfg})
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

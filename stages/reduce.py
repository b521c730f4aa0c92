"""Stage ``reduce``: PCA + normalisation per modality, fitted on the training split.

Reads ``paths.manifest``, the visual stores and the audio store, params ``reduce.*``; writes
``paths.items`` (one row per video), the fitted state folder ``paths.reduce_state`` (npz + JSON),
``paths.reduce_metrics`` (explained variance, counts) and ``paths.reduce_plots`` (one cumulative
explained-variance CSV per modality, shown by ``dvc plots show``).
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import asdict
from pathlib import Path

from pipeline.core import store
from pipeline.core.cli import run_stage
from pipeline.core.config import ConfigError
from pipeline.params import load_params
from pipeline.reduce.fit import ReduceError, save_states
from pipeline.reduce.items import build_items, modality_configs, modality_sources

log = logging.getLogger("stage.reduce")


def main() -> None:
    params = load_params()
    cfg, paths = params.reduce, params.paths
    manifest = store.read_table(paths.manifest, expect={"stage": "ingest"})
    sources = modality_sources(params)
    if not sources:
        raise ReduceError("reduce: every modality is disabled; set reduce.<name>.enabled: true for one")
    table, states, curves, metrics = build_items(manifest, sources, cfg, modality_configs(params))
    dims = {name: [len(st.components)] for name, st in states.items()}
    meta = store.make_meta(
        "reduce", params=cfg, dims=dims, state=paths.reduce_state, sources={n: asdict(s) for n, s in sources.items()}
    )
    store.write_table(table, paths.items, meta)
    save_states(paths.reduce_state, states, {"sources": {n: asdict(s) for n, s in sources.items()}, "params": cfg})
    store.write_text(paths.reduce_metrics, json.dumps(metrics, indent=2, sort_keys=True))
    Path(paths.reduce_plots).mkdir(parents=True, exist_ok=True)  # a DVC out even when no modality runs PCA
    for name, curve in curves.items():
        rows = "\n".join(f"{k + 1},{v:.6f}" for k, v in enumerate(curve))
        store.write_text(Path(paths.reduce_plots) / f"{name}.csv", f"component,cumulative_explained_variance\n{rows}\n")
    for name, m in sorted((n, metrics[n]) for n in states):
        log.info(
            "%s: %d -> %d dims%s, %.1f%% variance, %d train rows, %d missing",
            name,
            m["input_dim"],
            m["n_components"],
            " (n_components capped)" if m["capped"] else "",
            100 * m["explained_variance"],
            m["n_train"],
            m["missing"],
        )
    log.info("items: %d videos (%d dropped) -> %s", metrics["n_videos"], metrics["dropped"], paths.items)


if __name__ == "__main__":
    sys.exit(run_stage(main, (ConfigError, ReduceError, store.StoreError)))

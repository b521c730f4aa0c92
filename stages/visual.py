"""Stage ``visual@<name>``: visual features of every decoded video with one registered extractor.

``python -m stages.visual resnet152``. Reads ``paths.decoded`` and params ``visual.*``; updates
``<paths.visual_features>/visual_<name>.parquet`` (a folder of shards: video_id, fingerprint, vector
columns, padded; metadata: extractor, weights, dims, params, precision) and
``visual_<name>_failures.parquet``. Incremental (``pipeline.visual.extract``): only new or
changed videos run through the model.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from functools import partial

from pipeline import decoded, failures, store
from pipeline.config import ConfigError
from pipeline.executor import Job
from pipeline.params import load_params
from pipeline.runtime import run_stage
from pipeline.visual import registry, weights
from pipeline.visual.extract import build_worker, extract_store, make_worker, output_paths, store_meta

log = logging.getLogger("stage.visual")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m stages.visual")
    parser.add_argument("extractor", help="a registered extractor name (resnet152, c3d, i3d)")
    name = parser.parse_args(argv).extractor
    params = load_params()
    cfg = params.visual

    if name not in registry.names():
        raise ConfigError(f"unknown extractor {name!r}; registered: {', '.join(registry.names())}")
    if name not in cfg.extractors:
        log.warning("%s is not in visual.extractors; running it anyway (by hand)", name)
    root = params.paths.decoded
    built = build_worker(name, cfg, root)
    if built.weights == "random":
        log.warning("%s uses RANDOM weights (visual.%s.weights: random): fine for testing the pipeline, "
                    "meaningless as features", name, name)
    runtime = built.worker.engine.runtime
    log.info("%s on %s, precision %s, %d threads, batches of %d videos", name, runtime.device,
             runtime.precision, runtime.threads, cfg.batch_size)
    meta = store_meta(built.worker.engine, built.weights, built.detail, decoded.read_meta(root))
    job = Job(f"visual@{name}", partial(make_worker, name, cfg, os.path.abspath(root)), batch_size=cfg.batch_size,
              num_gpus=params.executor.num_gpus)
    summary = extract_store(built.worker, params.paths.visual_features, meta, job=job, executor=params.executor)
    final, failures_path = output_paths(params.paths.visual_features, name)
    rate = summary.computed / summary.seconds if summary.seconds > 0 else 0.0
    log.info("%s: %d rows (%d computed now in %.1f s, %.2f videos/s, shards rewritten: %s, %d failures) -> %s",
             name, summary.rows, summary.computed, summary.seconds, rate, summary.rewritten or "none",
             len(summary.failures), final)
    for f in summary.failures[:10]:
        log.warning("failed %s (%s): %s", f.video_id, f.reason, f.message)
    failures.check_rate(len(summary.failures), summary.total, cfg.max_failure_rate, "visual", failures_path)


if __name__ == "__main__":
    sys.exit(run_stage(main, (ConfigError, store.StoreError, failures.FailureRateExceeded, weights.WeightsError)))

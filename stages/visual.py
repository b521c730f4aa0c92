"""Stage ``visual@<name>``: visual features of every decoded video with one registered extractor.

``python -m stages.visual resnet152``. Reads ``paths.decoded`` and params ``visual.*``; writes
``<paths.visual_features>/visual_<name>.parquet`` (video_id, vector columns, padded; metadata:
extractor, weights, dims, params, precision, device) and ``visual_<name>_failures.parquet``.
An interrupted run resumes from per-shard parts (see ``pipeline.visual.output``).
"""
from __future__ import annotations

import argparse
import logging
import sys

from pipeline import decoded, failures, store
from pipeline.config import ConfigError
from pipeline.params import load_params
from pipeline.runtime import run_stage
from pipeline.visual import registry, weights
from pipeline.visual.engine import Engine, resolve_runtime
from pipeline.visual.extract import extract_store, output_paths, store_meta

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
    dmeta = decoded.read_meta(params.paths.decoded)
    runtime = resolve_runtime(cfg)
    extractor = registry.create(name, cfg, int(dmeta["dims"]["frames"][0]))
    loaded = weights.load(extractor, extractor.cfg.weights, runtime.device)
    if loaded.weights == "random":
        log.warning("%s uses RANDOM weights (visual.%s.weights: random): fine for testing the pipeline, "
                    "meaningless as features", name, name)
    log.info("%s on %s, precision %s, %d threads, batches of %d videos", name, runtime.device,
             runtime.precision, runtime.threads, cfg.batch_size)
    engine = Engine(extractor, loaded.model, runtime)
    meta = store_meta(engine, loaded.weights, loaded.detail, dmeta)
    summary = extract_store(engine, params.paths.decoded, params.paths.visual_features, meta, cfg.batch_size)
    final, failures_path = output_paths(params.paths.visual_features, name)
    rate = summary.computed / summary.seconds if summary.seconds > 0 else 0.0
    log.info("%s: %d rows (%d computed now at %.2f videos/s, %d failures) -> %s", name, summary.rows,
             summary.computed, rate, len(summary.failures), final)
    for f in summary.failures[:10]:
        log.warning("failed %s (%s): %s", f.video_id, f.reason, f.message)
    failures.check_rate(len(summary.failures), summary.total, cfg.max_failure_rate, "visual", failures_path)


if __name__ == "__main__":
    sys.exit(run_stage(main, (ConfigError, store.StoreError, failures.FailureRateExceeded, weights.WeightsError)))

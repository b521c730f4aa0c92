"""Stage ``visual@<name>``: visual features of every decoded video with one registered extractor.

``python -m stages.visual resnet152``. Reads ``paths.decoded`` (``paths.flow`` for an extractor whose
source is flow: ``i3d_flow``), params ``visual.*`` and, with ``visual.precision: int8``, the ``split``
column of ``paths.manifest`` (the calibration clips); updates
``<paths.visual_features>/visual_<name>.parquet`` (a folder of shards: video_id, fingerprint, vector
columns, padded; metadata: extractor, weights, dims, params, precision, graph) and
``visual_<name>_failures.parquet``. Incremental (the per-video stage runner): only new or
changed videos run through the model.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from functools import partial

from pipeline.core import failures, store
from pipeline.core.cli import run_stage
from pipeline.core.config import ConfigError
from pipeline.decode import decoded
from pipeline.execution import runner
from pipeline.execution.job import ExecutorError, Job
from pipeline.params import load_params
from pipeline.visual import weights
from pipeline.visual.extractor import EXTRACTORS
from pipeline.visual.worker import build_worker, make_worker, store_meta, visual_stage
from registry import UnknownName

log = logging.getLogger("stage.visual")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m stages.visual")
    parser.add_argument("extractor", help="a registered extractor name (resnet152, c3d, i3d, scene, i3d_flow)")
    name = parser.parse_args(argv).extractor
    params = load_params()
    cfg = params.visual
    EXTRACTORS.check(name)
    if name not in cfg.extractors:
        log.warning("%s is not in visual.extractors; running it anyway (by hand)", name)
        problem = params.frames_problem(name)  # load_params checked only the listed extractors
        if problem:
            raise ConfigError(problem)
    flow = EXTRACTORS.get(name).source == "flow"  # i3d_flow reads the flow store, which has the decoded layout
    root = params.paths.flow if flow else params.paths.decoded
    expect = {"stage": "flow"} if flow else None
    if flow and not os.path.exists(os.path.join(root, decoded.INDEX_NAME)):
        raise store.StoreError(
            f"{root}: no complete flow store (paths.flow), which visual@{name} reads: run `python -m stages.flow` "
            f"(in dvc.yaml once {name} is in visual.extractors and `python -m pipeline.dag` has rewritten it)"
        )
    built = build_worker(name, cfg, root, params.paths.manifest)
    if built.loaded.weights == "random":
        log.warning(
            "%s uses RANDOM weights (visual.%s.weights: random): fine for testing the pipeline, "
            "meaningless as features",
            name,
            name,
        )
    placement = built.worker.engine.placement
    log.info(
        "%s on %s, precision %s, %d threads, batches of %d videos",
        name,
        placement.device,
        placement.precision,
        placement.threads,
        cfg.batch_size,
    )
    meta = store_meta(built.worker.engine, built.loaded, decoded.read_meta(root))
    job = Job(
        f"visual@{name}",
        partial(make_worker, name, cfg, os.path.abspath(root), os.path.abspath(params.paths.manifest)),
        batch_size=cfg.batch_size,
        # A CPU actor runs the model on as many threads as a local run here would (visual.threads, 0 =
        # this machine's cores). It reserves that many CPUs, so a node holds one actor per that many
        # cores, and the thread count, on which the floats depend, is the same as a local run's; with
        # threads 0 on nodes smaller than this machine, an actor takes the largest node's cores instead
        # (the actor's threads follow the CPUs it is given: RayWorker).
        num_cpus=placement.threads if params.executor.num_gpus == 0 else 1,
        fit_cpus=cfg.threads == 0,
        num_gpus=params.executor.num_gpus,
    )
    stage = visual_stage(
        built.worker, params.paths.visual_features, meta, job=job, max_failure_rate=cfg.max_failure_rate
    )
    index = decoded.read_index(root, expect=expect)
    runner.run(stage, index.select(["video_id", "fingerprint", decoded.DECODE_ERRORS]).to_pylist(), params.executor)


if __name__ == "__main__":
    sys.exit(
        run_stage(
            main,
            (
                ConfigError,
                UnknownName,
                store.StoreError,
                failures.FailureRateExceeded,
                weights.WeightsError,
                ExecutorError,
            ),
        )
    )

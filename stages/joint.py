"""Stage ``joint@<name>``: one joint feature (``pipeline.joint``) of every decoded video, from the visual stores.

``python -m stages.joint scene_action``. Reads params ``joint.*``, the decoded index (``paths.decoded``)
and the input stores in ``paths.visual_features``; updates ``<paths.joint_features>/joint_<name>.parquet``
(a folder of shards: video_id, fingerprint, the ``<name>`` vector, padded; metadata: joint, dims, params
with the inputs' params hashes) and ``joint_<name>_failures.parquet``. Incremental (the per-video stage
runner): only new or changed videos are combined.
"""

from __future__ import annotations

import argparse
import logging
import sys
from functools import partial

from pipeline.core import failures, store
from pipeline.core.cli import run_stage
from pipeline.core.config import ConfigError
from pipeline.decode import decoded
from pipeline.execution import runner
from pipeline.execution.job import Job
from pipeline.joint.feature import JOINTS, Joint
from pipeline.joint.worker import BATCH, JointWorker, joint_meta, joint_stage, sources
from pipeline.params import load_params
from registry import UnknownName

log = logging.getLogger("stage.joint")


def make_worker(joint: Joint, visual_dir: str) -> JointWorker:
    return JointWorker(joint, sources(joint, visual_dir))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m stages.joint")
    parser.add_argument("feature", help="a registered joint feature name (scene_action, i3d_two_stream)")
    name = parser.parse_args(argv).feature
    params = load_params()
    JOINTS.check(name)
    joint = JOINTS.get(name)(params.joint.sections[name])
    if name not in params.joint.features:
        log.warning("%s is not in joint.features; running it anyway (by hand)", name)
        problem = joint.problem(params.visual)  # load_params checked only the listed ones
        if problem:
            raise ConfigError(problem)
    worker = make_worker(joint, params.paths.visual_features)
    meta = joint_meta(joint, worker.sources, decoded.read_meta(params.paths.decoded))
    log.info(
        "%s: %s -> %d dims",
        name,
        {r: f"{s.column} ({s.dim})" for r, s in worker.sources.items()},
        meta["dims"][name][0],
    )
    job = Job(f"joint@{name}", partial(make_worker, joint, params.paths.visual_features), batch_size=BATCH)
    stage = joint_stage(
        worker, params.paths.joint_features, meta, job=job, max_failure_rate=params.joint.max_failure_rate
    )
    index = decoded.read_index(params.paths.decoded)
    runner.run(stage, index.select(["video_id", "fingerprint", decoded.DECODE_ERRORS]).to_pylist(), params.executor)


if __name__ == "__main__":
    sys.exit(run_stage(main, (ConfigError, UnknownName, store.StoreError, failures.FailureRateExceeded)))

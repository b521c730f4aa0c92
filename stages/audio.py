"""Stage ``audio``: clip-level audio features of every decoded video.

Reads the decoded store (``paths.decoded``, audio only, never frames) and params ``audio.*``;
updates ``paths.audio_features`` (a folder of shards, columns in ``pipeline.audio.store``)
incrementally through the per-video stage runner (only new or changed videos are computed) and
``paths.audio_failures``. Videos without audio get zero vectors and ``has_audio = false``.
"""

from __future__ import annotations

import logging
import os
import sys
from functools import partial

from pipeline.audio import features as audio
from pipeline.audio import store as audio_store
from pipeline.core import failures, store
from pipeline.core.cli import run_stage
from pipeline.core.config import ConfigError
from pipeline.core.shards import ShardedStore
from pipeline.decode import decoded
from pipeline.execution import runner
from pipeline.execution.job import ExecutorError, Job, Row
from pipeline.execution.pools import processes, resolve_workers
from pipeline.params import AudioConfig, load_params

log = logging.getLogger("stage.audio")
POOL_MIN = 16  # fewer videos than this run in this process (an incremental run adding a handful)


def main() -> None:
    params = load_params()
    cfg = params.audio
    root = params.paths.decoded
    index = decoded.read_index(root)
    meta = decoded.read_meta(root)
    source_rate = int(meta["audio_rate"])
    if source_rate != cfg.sample_rate:
        log.warning(
            "decoded audio is %d Hz, audio.sample_rate is %d Hz: resampling with librosa (%s)%s",
            source_rate,
            cfg.sample_rate,
            audio.RESAMPLE_TYPE,
            "; upsampling adds no information" if cfg.sample_rate > source_rate else "",
        )
    out = params.paths.audio_features
    sharded = ShardedStore(
        out,
        int(meta["shards"]),
        audio_store.schema(cfg),
        audio_store.store_meta(cfg, source_rate, meta["params_hash"], int(meta["shards"])),
        stage="audio",
        failures_path=params.paths.audio_failures,
        encode=partial(audio_store.to_table, cfg=cfg),
        carry=(decoded.DECODE_ERRORS,),
    )
    # an absolute root: workers may not share this cwd. On ray the pool is sized from the cluster's
    # CPUs: audio.workers counts this machine's processes.
    job = Job("audio", partial(audio_store.AudioWorker, cfg, os.path.abspath(root)), batch_size=16)
    log.info(
        "feature sets %s at %d Hz; librosa is warmed up once per worker, not per video",
        audio.enabled(cfg),
        cfg.sample_rate,
    )
    stage = runner.PerVideoStage(
        "audio",
        "audio",
        sharded,
        job,
        partial(_local, job, cfg),
        cfg.max_failure_rate,
        to_worker=decoded.reference,
        source=lambda row: str(decoded.shard_path(root, row["shard"])),
    )
    runner.run(stage, index.select(["video_id", "fingerprint", decoded.DECODE_ERRORS]).to_pylist(), params.executor)


def _local(job: Job, cfg: AudioConfig, rows: list[Row]):
    # starting the pool's fork server costs more than a few videos take
    workers = 1 if len(rows) < POOL_MIN else resolve_workers(cfg.workers)
    return processes(job, rows, workers=workers, preload=("pipeline.audio.preload",))


if __name__ == "__main__":
    sys.exit(run_stage(main, (ConfigError, store.StoreError, failures.FailureRateExceeded, ExecutorError)))

"""Stage ``audio``: clip-level audio features of every decoded video.

Reads the decoded store (``paths.decoded``, audio only, never frames) and params ``audio.*``;
updates ``paths.audio_features`` (a folder of shards, columns in ``pipeline.audio_store``)
incrementally (``pipeline.shards``: only new or changed videos are computed) and
``paths.audio_failures``. Videos without audio get zero vectors and ``has_audio = false``.
"""
from __future__ import annotations

import logging
import os
import sys
from functools import partial

from pipeline import audio, audio_store, decoded, failures, store, work
from pipeline.config import ConfigError
from pipeline.executor import Job
from pipeline.params import load_params
from pipeline.runtime import progress, resolve_workers, run_stage
from pipeline.shards import ShardedStore

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
        log.warning("decoded audio is %d Hz, audio.sample_rate is %d Hz: resampling with librosa (%s)%s",
                    source_rate, cfg.sample_rate, audio.RESAMPLE_TYPE,
                    "; upsampling adds no information" if cfg.sample_rate > source_rate else "")
    workers = resolve_workers(cfg.workers)
    out = params.paths.audio_features
    schema = audio_store.schema(cfg)
    sharded = ShardedStore(out, int(meta["shards"]), schema, audio_store.store_meta(
        cfg, source_rate, meta["params_hash"], int(meta["shards"])), stage="audio",
        failures_path=params.paths.audio_failures, encode=partial(audio_store.to_table, cfg=cfg))
    job = Job("audio", partial(audio_store.AudioWorker, cfg, os.path.abspath(root)), batch_size=16,
              concurrency=workers)  # an absolute root: workers may not share this cwd
    with store.locked(out):
        plan = sharded.plan(index.select(["video_id", "fingerprint"]).to_pylist())
        todo = [{k: r[k] for k in ("video_id", "fingerprint", "shard")} for r in plan.todo]
        if len(todo) < POOL_MIN:  # starting the pool's fork server costs more than a few videos take
            workers = 1
        log.info("feature sets %s at %d Hz: %d of %d videos to compute, %d worker(s); librosa is warmed up once "
                 "per worker, not per video", audio.enabled(cfg), cfg.sample_rate, len(todo), plan.total, workers)
        local = partial(work.processes, job, workers=workers, preload=("pipeline.audio_preload",))
        results = work.run(job, todo, params.executor, local)
        source = {r["video_id"]: str(decoded.shard_path(root, r["shard"])) for r in todo}
        summary = sharded.write(plan, progress(results, len(todo), "audio"), source)
    for f in summary.failures:
        log.warning("skipped %s (%s): %s", f.video_id, f.reason, f.message)
    log.info("audio features: %d rows (%d computed now in %.1f s, shards rewritten: %s), %d failures -> %s",
             summary.rows, summary.computed, summary.seconds, summary.rewritten or "none", len(summary.failures), out)
    failures.check_rate(len(summary.failures), summary.total, cfg.max_failure_rate, "audio", params.paths.audio_failures)


if __name__ == "__main__":
    sys.exit(run_stage(main, (ConfigError, store.StoreError, failures.FailureRateExceeded)))

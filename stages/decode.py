"""Stage ``decode``: sample T frames and mono audio per manifest video into sharded Parquet.

Reads ``paths.manifest`` and params ``decode.*``; updates ``paths.decoded`` (layout in
``pipeline.decoded``) incrementally (``pipeline.shards``): only new or changed videos are
decoded, only the shards they touch are rewritten; then ``index.parquet`` and ``failures.parquet``.
"""
from __future__ import annotations

import logging
import os
import sys
from functools import partial
from pathlib import Path

import pyarrow as pa

from pipeline import decoded, failures, store, work
from pipeline.config import ConfigError
from pipeline.decode import DecodeWorker, decoded_meta
from pipeline.decoded import FAILURES_NAME, INDEX_NAME, SHARD_SCHEMA
from pipeline.executor import Job
from pipeline.params import load_params
from pipeline.runtime import progress, resolve_workers, run_stage
from pipeline.shards import ShardedStore

log = logging.getLogger("stage.decode")


def main() -> None:
    params = load_params()
    cfg = params.decode
    manifest = store.read_table(params.paths.manifest, expect={"stage": "ingest"}).to_pylist()
    out = Path(params.paths.decoded)
    meta = decoded_meta(cfg)
    sharded = ShardedStore(out, cfg.shards, SHARD_SCHEMA, meta, stage="decode", failures_path=out / FAILURES_NAME,
                           encode=partial(pa.Table.from_pylist, schema=SHARD_SCHEMA), row_group=1)
    workers = resolve_workers(cfg.workers)
    job = Job("decode", partial(DecodeWorker, cfg), batch_size=1, num_cpus=1, concurrency=workers)
    with store.locked(out):
        plan = sharded.plan(manifest)
        if plan.changed:
            (out / INDEX_NAME).unlink(missing_ok=True)  # no index = decode did not finish (readers stop)
        log.info("decode: %d of %d videos to decode, %d of %d shards to write", len(plan.todo), plan.total,
                 len(plan.dirty), cfg.shards)
        todo = [row | {"path": os.path.abspath(row["path"])} for row in plan.todo]  # workers may run elsewhere
        results = work.run(job, todo, params.executor, partial(work.threads, job, workers=workers))
        summary = sharded.write(plan, progress(results, len(plan.todo), "decode"),
                                {r["video_id"]: r["path"] for r in manifest})
        decoded.write_index(out, meta)
    for f in summary.failures:
        log.warning("skipped %s (%s): %s", f.video_id, f.reason, f.message)
    log.info("decoded store: %d videos (%d decoded now in %.1f s, shards rewritten: %s), %d failures -> %s",
             summary.rows, summary.computed, summary.seconds, summary.rewritten or "none", len(summary.failures), out)
    failures.check_rate(len(summary.failures), summary.total, cfg.max_failure_rate, "decode", out / FAILURES_NAME)


if __name__ == "__main__":
    sys.exit(run_stage(main, (ConfigError, store.StoreError, failures.FailureRateExceeded)))

"""Stage ``decode``: sample T frames and mono audio per manifest video into sharded Parquet.

Reads ``paths.manifest`` and params ``decode.*``; updates ``paths.decoded`` (layout in
``pipeline.decode.decoded``) incrementally through the per-video stage runner: only new or changed
videos are decoded, only the shards they touch are rewritten; then ``index.parquet`` (the store's
completion record, removed while the store changes) and ``failures.parquet``.
"""

from __future__ import annotations

import logging
import os
import sys
from functools import partial
from pathlib import Path

import pyarrow as pa

from pipeline.core import failures, store
from pipeline.core.cli import run_stage
from pipeline.core.config import ConfigError
from pipeline.core.shards import ShardedStore
from pipeline.decode import decoded
from pipeline.decode.worker import DecodeWorker, decoded_meta
from pipeline.execution import runner
from pipeline.execution.job import ExecutorError, Job
from pipeline.execution.pools import resolve_workers, threads
from pipeline.params import load_params

log = logging.getLogger("stage")


def main() -> None:
    params = load_params()
    cfg = params.decode
    manifest = store.read_table(params.paths.manifest, expect={"stage": "ingest"}).to_pylist()
    out = Path(params.paths.decoded)
    meta = decoded_meta(cfg)
    sharded = ShardedStore(
        out,
        cfg.shards,
        decoded.SHARD_SCHEMA,
        meta,
        stage="decode",
        failures_path=out / decoded.FAILURES_NAME,
        encode=partial(pa.Table.from_pylist, schema=decoded.SHARD_SCHEMA),
        row_group=1,
    )
    workers = resolve_workers(cfg.workers)
    # on ray the pool is sized from the cluster's CPUs: decode.workers counts this machine's threads
    job = Job("decode", partial(DecodeWorker, cfg), batch_size=1, num_cpus=1)
    stage = runner.PerVideoStage(
        "decode",
        "decode",
        sharded,
        job,
        partial(threads, job, workers=workers),
        cfg.max_failure_rate,
        to_worker=lambda row: row | {"path": os.path.abspath(row["path"])},  # workers may run elsewhere
        source=lambda row: row["path"],
        on_change=lambda plan: (out / decoded.INDEX_NAME).unlink(missing_ok=True),  # no index: readers stop
        on_complete=lambda: decoded.write_index(out, meta),
    )
    runner.run(stage, manifest, params.executor)
    warn_damaged(decoded.read_index(out), cfg.on_corrupt, out / decoded.INDEX_NAME)


def warn_damaged(index: pa.Table, on_corrupt: str, where: Path, shown: int = 3) -> int:
    """One warning line when videos were kept with damaged data (``decode.on_corrupt: keep``): how many,
    the worst ones, and where the flag is. Returns the count."""
    errors = index.column("decode_errors").to_pylist()
    damaged = sorted(((n, v) for n, v in zip(errors, index.column("video_id").to_pylist()) if n), reverse=True)
    if damaged:
        worst = ", ".join(f"{v} ({n} errors)" for n, v in damaged[:shown])
        log.warning(
            "decode: %d of %d videos kept with damaged data (decode.on_corrupt: %s), worst: %s%s; "
            "column decode_errors of %s flags them (decode.on_corrupt: fail makes them failure rows)",
            len(damaged),
            len(errors),
            on_corrupt,
            worst,
            f" and {len(damaged) - shown} more" if len(damaged) > shown else "",
            where,
        )
    return len(damaged)


if __name__ == "__main__":
    sys.exit(run_stage(main, (ConfigError, store.StoreError, failures.FailureRateExceeded, ExecutorError)))

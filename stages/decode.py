"""Stage ``decode``: sample T frames and mono audio per manifest video into sharded Parquet.

Reads ``paths.manifest`` and params ``decode.*``; writes ``paths.decoded`` (layout in
``pipeline.decoded``): shards, ``index.parquet`` and ``failures.parquet``.
"""
from __future__ import annotations

import logging
import sys
from functools import partial
from pathlib import Path

from pipeline import failures, store
from pipeline.config import ConfigError
from pipeline.decode import decode_row, decoded_meta
from pipeline.decoded import FAILURES_NAME, DecodedWriter
from pipeline.params import load_params
from pipeline.runtime import bounded_map, progress, resolve_workers, run_stage

log = logging.getLogger("stage.decode")


def main() -> None:
    params = load_params()
    cfg = params.decode
    manifest = store.read_table(params.paths.manifest, expect={"stage": "ingest"})
    rows = manifest.to_pylist()
    out = Path(params.paths.decoded)
    writer = DecodedWriter(out, cfg.shards, decoded_meta(cfg, store.read_meta(params.paths.manifest)["params_hash"]))
    failed, padded = [], 0
    try:
        results = bounded_map(partial(decode_row, cfg=cfg), rows, resolve_workers(cfg.workers))
        for result in progress(results, len(rows), "decode"):
            if isinstance(result, failures.Failure):
                failed.append(result)
                log.warning("skipped %s (%s): %s", result.video_id, result.reason, result.message)
                continue
            padded += result["padded"]
            writer.add(result)
    except BaseException:
        writer.abort()  # no shard or index is left behind looking complete
        raise
    writer.close()
    failures.write(failed, out / FAILURES_NAME, "decode")
    log.info("decoded %d videos (%d padded to %d frames), %d failures -> %s",
             len(rows) - len(failed), padded, cfg.num_frames, len(failed), out)
    failures.check_rate(len(failed), len(rows), cfg.max_failure_rate, "decode", out / FAILURES_NAME)


if __name__ == "__main__":
    sys.exit(run_stage(main, (ConfigError, store.StoreError, failures.FailureRateExceeded)))

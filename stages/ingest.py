"""Stage ``ingest``: probe every input video; write the manifest and the failures table.

Reads params ``data.input`` and ``ingest.*``; writes ``paths.manifest`` (one row per
usable video: probe facts, fingerprint, label, split) and ``paths.ingest_failures``.
"""

from __future__ import annotations

import logging
import sys

from pipeline.core import failures, store
from pipeline.core.cli import progress, run_stage
from pipeline.core.config import ConfigError
from pipeline.execution.pools import bounded_map, resolve_workers
from pipeline.ingest.scan import InputError, assign_splits, list_inputs, manifest_table, previous_manifest, probe_one
from pipeline.params import load_params

log = logging.getLogger("stage.ingest")


def main() -> None:
    params = load_params()
    cfg = params.ingest
    inputs = list_inputs(params.data.input, cfg.extensions, allow_outside_paths=cfg.allow_outside_paths)
    items = inputs.videos
    if inputs.skipped:
        log.info("%s: not scanned: %s", params.data.input, inputs.describe_skipped())
    if inputs.outside:
        log.info(
            "%s: %d paths outside the manifest's folder (ingest.allow_outside_paths)", params.data.input, inputs.outside
        )
    splits = assign_splits(items, cfg.split)
    previous = previous_manifest(params.paths.manifest)  # unchanged files are not probed or hashed again
    results = bounded_map(lambda job: probe_one(*job, previous), zip(items, splits), resolve_workers(cfg.workers))
    rows, failed = [], list(inputs.failures)  # entries the listing could not use (loops, closed folders)
    for result in progress(results, len(items), "ingest"):
        (failed if isinstance(result, failures.Failure) else rows).append(result)
    meta = store.make_meta("ingest", params={"input": params.data.input, "split": cfg.split})
    reused = sum(r["path"] in previous for r in rows)
    store.write_if_changed(manifest_table(rows), params.paths.manifest, meta)
    failures.write(failed, params.paths.ingest_failures, "ingest")
    for f in failed:
        log.warning("skipped %s (%s): %s", f.video_id, f.reason, f.message)
    log.info(
        "manifest: %d videos (%d unchanged files not probed again), %d failures -> %s",
        len(rows),
        reused,
        len(failed),
        params.paths.manifest,
    )
    n_total = len(items) + len(inputs.failures)
    failures.check_rate(len(failed), n_total, cfg.max_failure_rate, "ingest", params.paths.ingest_failures)


if __name__ == "__main__":
    sys.exit(run_stage(main, (ConfigError, InputError, store.StoreError, failures.FailureRateExceeded)))

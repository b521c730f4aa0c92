"""Stage ``flow``: optical flow between consecutive decoded frames of every video (``pipeline.flow``).

Reads ``paths.decoded`` and params ``flow.*``; updates ``paths.flow`` (the decoded store's layout:
shards whose ``frames`` hold ``(T - 1, S, S, 2)`` uint8 flow, ``index.parquet`` written last,
``failures.parquet``) incrementally through the per-video stage runner, videos in parallel
(``flow.workers`` threads, one core each). Only in dvc.yaml while an extractor in
``visual.extractors`` reads flow (``i3d_flow``).
"""

from __future__ import annotations

import logging
import sys

from pipeline.core import failures, store
from pipeline.core.cli import run_stage
from pipeline.core.config import ConfigError
from pipeline.flow.worker import compute_store
from pipeline.params import load_params

log = logging.getLogger("stage.flow")


def main() -> None:
    params = load_params()
    log.info("flow: %s, clipped to +-%g px", params.flow.method, params.flow.bound)
    compute_store(params.flow, params.paths.decoded, params.paths.flow, params.executor)


if __name__ == "__main__":
    sys.exit(run_stage(main, (ConfigError, store.StoreError, failures.FailureRateExceeded)))

"""Failures tables: one row per input a stage could not use, and the failure-rate guard.

Every stage that drops inputs writes ``failures.parquet`` with columns
``video_id, path, stage, reason, message, fingerprint``: ``reason`` is a machine-readable code
(listed in ``REASONS``), ``message`` is for people.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from pipeline.core import store

REASONS = {
    "missing_file": "the path does not exist (or is a symlink to a missing file)",
    "symlink_loop": "the path is a symlink that loops (resolving it never ends)",
    "permission_denied": "the file exists but this user may not read it",
    "unlistable_folder": "a folder inside the input folder that this user may not list",
    "bad_name": "the file's path holds a control character (a newline, a tab, ...), which no video_id may hold",
    "empty_file": "the file has zero bytes",
    "unreadable": "ffprobe cannot parse the file (not a media file, or truncated)",
    "no_video_stream": "the file holds no video stream (audio-only, subtitles, ...)",
    "no_frames": "the video stream holds no frames",
    "decode_error": "ffmpeg failed while decoding the sampled frames",
    "corrupt_stream": "ffmpeg decoded the video but reported damaged data (decode.on_corrupt: fail)",
    "bad_frames": "the decoded frames blob is missing or not of the store's shape",
    "extract_error": "a feature extractor failed on the video (model error, non-finite input or features)",
    "missing_input": "an input store of a joint feature has no current row for the video (it failed there, or is stale)",
    "worker_error": "an executor worker raised on the video (pipeline.execution.executors turns it into this row)",
}

SCHEMA = pa.schema(
    [
        ("video_id", pa.string()),
        ("path", pa.string()),
        ("stage", pa.string()),
        ("reason", pa.string()),
        ("message", pa.string()),
        ("fingerprint", pa.string()),
    ]
)


@dataclass(frozen=True)
class Failure:
    video_id: str
    path: str
    stage: str
    reason: str
    message: str
    fingerprint: str | None = (
        None  # the video's content hash, when known: incremental runs keep the row until it changes
    )

    def __post_init__(self) -> None:
        if self.reason not in REASONS:
            raise ValueError(f"unknown failure reason {self.reason!r}")


class FailureRateExceeded(RuntimeError):
    """More inputs failed than the stage's ``max_failure_rate`` allows."""


def to_table(failures: list[Failure]) -> pa.Table:
    cols = {name: [getattr(f, name) for f in failures] for name in SCHEMA.names}
    return pa.table(cols, schema=SCHEMA)


def write(failures: list[Failure], path: str | Path, stage: str) -> None:
    store.write_table(to_table(failures), path, store.make_meta(stage, kind="failures"))


def check_rate(n_failed: int, n_total: int, max_rate: float, stage: str, table_path: str | Path) -> None:
    """Fail loudly (after the failures table is written) when too many inputs failed."""
    if n_total == 0:
        raise FailureRateExceeded(f"{stage}: no inputs to process")
    rate = n_failed / n_total
    if rate > max_rate:
        raise FailureRateExceeded(
            f"{stage}: {n_failed}/{n_total} inputs failed ({rate:.0%} > {stage}.max_failure_rate="
            f"{max_rate:.0%}); see {table_path} (python -m pipeline.show {table_path})"
        )

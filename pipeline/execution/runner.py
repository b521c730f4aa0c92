"""The per-video stage runner: plan -> run (local or an executor) -> write shards -> failures ->
completion -> rate check. Decode, every visual extractor and audio use it and keep only their worker.

Reads nothing itself: the stage gives the rows it wants in the store (``video_id``, ``fingerprint``
and whatever its worker needs) and a ``ShardedStore``; ``run`` holds the store's lock, plans what
is new or changed (``pipeline.core.shards``), streams those rows through the job on
``executor.kind`` (``local`` uses the stage's own fast path), commits each shard as it completes,
writes the failures table, calls the stage's completion step, logs a summary and raises
``FailureRateExceeded`` when more inputs failed than the stage allows.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pipeline.core import failures, store
from pipeline.core.cli import progress
from pipeline.core.shards import Plan, ShardedStore, Summary
from pipeline.execution import executors
from pipeline.execution.job import ExecutorConfig, Job, Row

log = logging.getLogger("stage")
SHOWN_FAILURES = 10  # failure rows logged one per line; the rest are in the failures table


@dataclass(frozen=True)
class PerVideoStage:
    """One per-video stage: its store, its job, and how the job runs locally."""

    name: str  # in log lines and the progress bar: decode, audio, visual@resnet152
    section: str  # the params section whose max_failure_rate applies
    store: ShardedStore
    job: Job
    local: Callable[[list[Row]], Iterator[Row]]  # executor.kind local: the stage's fast path
    max_failure_rate: float
    # a planned row -> the row sent to a worker (light references: workers may run elsewhere)
    to_worker: Callable[[Row], Row] = dict
    # video_id -> the input path named in its failure rows
    source: Callable[[Row], str] = lambda row: ""
    on_change: Callable[[Plan], None] | None = None  # before any shard changes (e.g. remove a completion record)
    on_complete: Callable[[], None] | None = None  # after every shard and the failures table are written


def run(stage: PerVideoStage, wanted: Iterable[Mapping[str, Any]], executor: ExecutorConfig) -> Summary:
    """Bring ``stage.store`` up to date with ``wanted``; the summary of what was kept and computed."""
    with store.locked(stage.store.root):
        plan = stage.store.plan(wanted)
        if plan.changed and stage.on_change is not None:
            stage.on_change(plan)
        log.info(
            "%s: %d of %d videos to compute, %d of %d shards to write",
            stage.name,
            len(plan.todo),
            plan.total,
            len(plan.dirty),
            stage.store.shards,
        )
        todo = [stage.to_worker(row) for row in plan.todo]
        source = {row["video_id"]: stage.source(row) for row in plan.todo}
        results = _results(stage, todo, executor)
        summary = stage.store.write(plan, progress(results, len(todo), stage.name), source)
        if stage.on_complete is not None:
            stage.on_complete()
    rate = summary.computed / summary.seconds if summary.seconds > 0 else 0.0
    log.info(
        "%s: %d rows (%d computed now in %.1f s, %.2f videos/s, shards rewritten: %s), %d failures -> %s",
        stage.name,
        summary.rows,
        summary.computed,
        summary.seconds,
        rate,
        summary.rewritten or "none",
        len(summary.failures),
        stage.store.root,
    )
    for f in summary.failures[:SHOWN_FAILURES]:
        log.warning("%s: failed %s (%s): %s", stage.name, f.video_id, f.reason, f.message)
    if len(summary.failures) > SHOWN_FAILURES:
        log.warning(
            "%s: %d more failures in %s", stage.name, len(summary.failures) - SHOWN_FAILURES, stage.store.failures_path
        )
    failures.check_rate(
        len(summary.failures), summary.total, stage.max_failure_rate, stage.section, stage.store.failures_path
    )
    return summary


def _results(stage: PerVideoStage, todo: list[Row], executor: ExecutorConfig) -> Iterator[Row]:
    """No workers for no rows; ``local`` keeps the stage's fast path, any other kind its executor."""
    if not todo:
        return iter(())
    return stage.local(todo) if executor.kind == "local" else executors.run(stage.job, todo, executor)

"""What every bench prints and saves: report lines (printed as they come, written to bench/out/ at the end)
and the machine they ran on. Imported by the bench scripts as a sibling module (``python bench/<name>.py``)."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np


def cpu_name() -> str:
    """The CPU's model name from /proc/cpuinfo (platform's guess elsewhere)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            return next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown CPU"


def usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def fmt(values: list[float | None], digits: int = 4) -> str:
    """``mean ± std`` over seeds (population std; None or NaN left out); ``n/a`` when none is a number."""
    v = np.array([np.nan if x is None else x for x in values], float)
    return "n/a" if np.isnan(v).all() else f"{np.nanmean(v):.{digits}f} ± {np.nanstd(v):.{digits}f}"


def run_seeds(one: Callable[[int], dict], seeds: list[int]) -> tuple[list[dict], float]:
    """``one(seed)`` for each seed (a run's metrics): the runs and the wall seconds per run."""
    t0 = time.perf_counter()
    runs = [one(seed) for seed in seeds]
    return runs, (time.perf_counter() - t0) / max(len(runs), 1)


def seed_cells(runs: list[dict], seconds: float, metrics: tuple[str, ...]) -> list[str]:
    """A CTR table row's cells over seeds: validation AUC, each test metric, mean epochs run, s/run."""
    return [
        fmt([r["valid"]["auc"] if r.get("valid") else None for r in runs]),
        *(fmt([r.get(k) for r in runs]) for k in metrics),
        f"{np.mean([r['epochs_run'] for r in runs]):.0f}",
        f"{seconds:.0f}",
    ]


class Report:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def emit(self, line: str = "") -> None:
        print(line, flush=True)
        self.lines.append(line)

    def save(self, path: str | Path) -> None:
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("\n".join(self.lines) + "\n", encoding="utf-8")

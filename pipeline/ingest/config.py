"""Sections ``ingest`` and its ``ingest.split``: which files are videos and how they are split."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.core.config import FieldError, at_least, check_rate


@dataclass(frozen=True)
class SplitConfig:
    train: float
    valid: float  # test gets the rest
    seed: int
    stratify: bool  # balance labels across splits (when labels exist)

    def __post_init__(self) -> None:
        if not (0 < self.train < 1 and 0 <= self.valid < 1 and self.train + self.valid <= 1):
            raise FieldError(
                "train", f"and valid need 0 < train < 1, 0 <= valid, train + valid <= 1; got {self.train}, {self.valid}"
            )


@dataclass(frozen=True)
class IngestConfig:
    extensions: tuple[str, ...]  # file suffixes scanned in a folder input
    split: SplitConfig
    allow_outside_paths: bool  # manifest paths may leave the manifest's folder (`../x.mp4`, `/data/x.mp4`)
    workers: int  # 0 = one per CPU core
    max_failure_rate: float

    def __post_init__(self) -> None:
        check_rate(self.max_failure_rate)
        at_least(self, 0, "workers", meaning="0 = one per core")

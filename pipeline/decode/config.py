"""Section ``decode``: how frames and audio are sampled from each video."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pipeline.core.config import at_least, check_rate


@dataclass(frozen=True)
class DecodeConfig:
    num_frames: int
    sampling: Literal["uniform", "consecutive"]
    size: int  # frames are resized and centre-cropped to size x size
    audio_rate: int
    on_corrupt: Literal["keep", "fail"]  # ffmpeg reported damaged data: keep (stored, decode_errors > 0) | fail
    shards: int
    workers: int  # 0 = one per CPU core
    max_failure_rate: float

    def __post_init__(self) -> None:
        check_rate(self.max_failure_rate)
        at_least(self, 1, "num_frames", "shards")
        at_least(self, 8, "size")
        at_least(self, 1000, "audio_rate")
        at_least(self, 0, "workers", meaning="0 = one per core")

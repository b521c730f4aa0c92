"""Section ``flow``: optical flow between decoded frames and its two methods' parameters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pipeline.core.config import FieldError, at_least, check_rate, positive


@dataclass(frozen=True)
class FarnebackConfig:
    """cv2.calcOpticalFlowFarneback's parameters (OpenCV's documented example values are the defaults)."""

    pyr_scale: float  # image scale between pyramid levels (< 1)
    levels: int  # pyramid levels
    winsize: int  # averaging window: larger is smoother and more robust, blurs motion boundaries
    iterations: int  # per pyramid level
    poly_n: int  # pixel neighbourhood of the polynomial expansion (5 or 7)
    poly_sigma: float  # Gaussian std of that expansion (1.1 for poly_n 5, 1.5 for 7)

    def __post_init__(self) -> None:
        if not 0 < self.pyr_scale < 1:
            raise FieldError("pyr_scale", f"must be in (0, 1), got {self.pyr_scale!r}")
        at_least(self, 1, "levels", "winsize", "iterations", "poly_n")
        positive(self, "poly_sigma")


@dataclass(frozen=True)
class TVL1Config:
    """cv2.optflow.DualTVL1OpticalFlow's main parameters (the defaults are OpenCV's, as the I3D paper used)."""

    tau: float  # time step of the numerical scheme
    lambda_weight: float  # weight of the data term (OpenCV's lambda): smaller is smoother
    theta: float  # tightness of the attachment
    scales: int  # pyramid levels
    warps: int  # warpings per scale
    epsilon: float  # stopping threshold

    def __post_init__(self) -> None:
        positive(self, "tau", "lambda_weight", "theta", "epsilon")
        at_least(self, 1, "scales", "warps")


@dataclass(frozen=True)
class FlowConfig:
    """Section ``flow``: optical flow between consecutive decoded frames (``pipeline.flow``)."""

    method: Literal["farneback", "tvl1"]  # farneback: fast (the default) | tvl1: TV-L1 as in I3D, ~50x slower
    bound: float  # flow clipped to +-bound pixels and stored as uint8 (I3D and TSN: 20)
    farneback: FarnebackConfig
    tvl1: TVL1Config
    workers: int  # videos computed in parallel (threads; OpenCV releases the GIL); 0 = one per core
    max_failure_rate: float

    def __post_init__(self) -> None:
        check_rate(self.max_failure_rate)
        positive(self, "bound")
        if self.workers < 0:
            raise FieldError("workers", "must be >= 0 (0 = one per core)")

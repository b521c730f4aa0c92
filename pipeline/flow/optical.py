"""Optical flow of one video's decoded frames (pure functions: uint8 frames in, arrays out).

``video_flow`` turns ``(T, S, S, 3)`` RGB frames into ``(T - 1, S, S, 2)`` float32 flow (x, y
displacement in pixels from frame t to t + 1), each frame converted to grey once; ``quantise``
stores it as uint8 over ``[-bound, bound]`` (I3D and TSN clip TV-L1 flow to +-20 px and keep it as
8-bit images), ``dequantise`` reads it back (one step is ``2 * bound / 255`` px).
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from pipeline.flow.config import FlowConfig

GREY = np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R BT.601, as cv2.COLOR_RGB2GRAY

PairFlow = Callable[[np.ndarray, np.ndarray], np.ndarray]


def grey(frames: np.ndarray) -> np.ndarray:
    """(T, S, S, 3) uint8 RGB -> (T, S, S) uint8, all frames in one pass."""
    return np.clip(frames @ GREY + 0.5, 0, 255).astype(np.uint8)


def pair_flow(cfg: FlowConfig) -> PairFlow:
    """The configured method as ``f(prev, next) -> (S, S, 2)`` float32 on grey frames."""
    if cfg.method == "tvl1":
        t = cfg.tvl1
        tvl1 = cv2.optflow.DualTVL1OpticalFlow_create(
            tau=t.tau, lambda_=t.lambda_weight, theta=t.theta, nscales=t.scales, warps=t.warps, epsilon=t.epsilon
        )
        return lambda prev, nxt: tvl1.calc(prev, nxt, None)
    f = cfg.farneback
    return lambda prev, nxt: cv2.calcOpticalFlowFarneback(
        prev, nxt, None, f.pyr_scale, f.levels, f.winsize, f.iterations, f.poly_n, f.poly_sigma, 0
    )


def video_flow(frames: np.ndarray, flow: PairFlow) -> np.ndarray:
    """(T, S, S, 3) uint8 -> (T - 1, S, S, 2) float32: the flow from each frame to the next."""
    g = grey(frames)
    out = np.empty((len(g) - 1, *g.shape[1:], 2), np.float32)
    for t in range(len(g) - 1):
        out[t] = flow(g[t], g[t + 1])
    return out


def quantise(flow: np.ndarray, bound: float) -> np.ndarray:
    """Float flow -> uint8: clipped to +-bound, 0..255 linearly (0 px is 127.5, stored as 128)."""
    scaled = (np.clip(flow, -bound, bound) + bound) * (255.0 / (2 * bound))
    return np.rint(scaled).astype(np.uint8)


def dequantise(q: np.ndarray, bound: float) -> np.ndarray:
    """uint8 -> float32 flow in pixels (the inverse of ``quantise`` up to half a step)."""
    return q.astype(np.float32) * np.float32(2 * bound / 255.0) - np.float32(bound)

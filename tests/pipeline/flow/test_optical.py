"""Optical flow on synthetic translating patterns: the shift comes back (sign and magnitude)."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.flow.optical import dequantise, grey, pair_flow, quantise, video_flow
from pipeline.params import FarnebackConfig, FlowConfig, TVL1Config

FARNEBACK = FarnebackConfig(pyr_scale=0.5, levels=3, winsize=15, iterations=3, poly_n=5, poly_sigma=1.2)
TVL1 = TVL1Config(tau=0.25, lambda_weight=0.15, theta=0.3, scales=3, warps=5, epsilon=0.01)


def config(method: str = "farneback", bound: float = 20.0) -> FlowConfig:
    return FlowConfig(method, bound, FARNEBACK, TVL1, workers=1, max_failure_rate=0.5)


def texture(size: int, seed: int = 0) -> np.ndarray:
    """(S, S, 3) uint8: smooth random blobs (flow needs gradients everywhere, not white noise)."""
    rng = np.random.default_rng(seed)
    coarse = rng.random((size // 8 + 2, size // 8 + 2))
    big = np.kron(coarse, np.ones((8, 8)))[:size, :size]  # (S, S) blocks
    k = np.exp(-0.5 * (np.arange(-6, 7) / 2.5) ** 2)
    k /= k.sum()
    smooth = np.apply_along_axis(lambda r: np.convolve(r, k, "same"), 0, big)
    smooth = np.apply_along_axis(lambda r: np.convolve(r, k, "same"), 1, smooth)
    img = (255 * (smooth - smooth.min()) / (smooth.max() - smooth.min())).astype(np.uint8)
    return np.stack([img, img, img], axis=-1)


def translating(t: int, size: int, dx: int, dy: int) -> np.ndarray:
    """(T, S, S, 3): frame k is the texture moved by (k*dx, k*dy) pixels (right, down)."""
    base = texture(size + 64)
    return np.stack([np.roll(base, (k * dy, k * dx), axis=(0, 1))[32 : 32 + size, 32 : 32 + size] for k in range(t)])


@pytest.mark.parametrize(("method", "size"), [("farneback", 96), ("tvl1", 48)])
@pytest.mark.parametrize(("dx", "dy"), [(3, -2), (-2, 1)])
def test_flow_recovers_the_shift(method, size, dx, dy):
    frames = translating(3, size, dx, dy)
    flow = video_flow(frames, pair_flow(config(method)))
    assert flow.shape == (2, size, size, 2) and flow.dtype == np.float32
    inner = flow[:, 12:-12, 12:-12]  # away from the borders, where content enters and leaves
    got = np.median(inner.reshape(-1, 2), axis=0)
    np.testing.assert_allclose(got, [dx, dy], atol=0.35)


def test_still_frames_give_zero_flow():
    frames = np.repeat(texture(48)[None], 3, axis=0)
    flow = video_flow(frames, pair_flow(config()))
    assert np.abs(flow).max() < 0.25 and np.abs(np.median(flow.reshape(-1, 2), axis=0)).max() < 1e-2


def test_quantise_round_trip_and_clipping():
    flow = np.array([-50.0, -20.0, -3.3, 0.0, 7.9, 20.0, 50.0], np.float32)
    q = quantise(flow, 20.0)
    assert q.dtype == np.uint8 and q[0] == 0 and q[-1] == 255
    back = dequantise(q, 20.0)
    step = 40.0 / 255
    np.testing.assert_allclose(back[1:-1], flow[1:-1], atol=step / 2 + 1e-5)
    assert back[0] == -20.0 and back[-1] == 20.0  # clipped to the bound


def test_grey_matches_opencv():
    import cv2

    frames = np.random.default_rng(0).integers(0, 256, (2, 16, 16, 3), dtype=np.uint8)
    want = np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames])
    assert np.abs(grey(frames).astype(int) - want.astype(int)).max() <= 1

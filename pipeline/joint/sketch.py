"""Tensor Sketch (Pham & Pagh 2013; compact bilinear pooling, Gao et al. 2016): the count sketch of the
flattened outer product of two vectors, computed without forming the outer product.

For ``x`` (m) and ``y`` (n), ``count_sketch(outer(x, y).ravel())`` with the pair hash
``(hx[i] + hy[j]) mod d`` and sign ``sx[i] * sy[j]`` equals the circular convolution of the two
vectors' own count sketches, i.e. ``irfft(rfft(C(x)) * rfft(C(y)))``: O(B (m + n + d log d)) work and
O(B d) memory for a batch, against O(B m n) for the outer products. Inner products are preserved in
expectation: ``E <TS(x, y), TS(x', y')> = <x, x'> <y, y'>`` (the inner product of the outer products).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class CountSketch:
    """A random projection R^n -> R^d: coordinate i goes to bucket ``h[i]`` with sign ``s[i]``."""

    h: np.ndarray  # (n,) int64 in [0, d)
    s: np.ndarray  # (n,) float32, +1 or -1
    d: int

    @classmethod
    def draw(cls, n: int, d: int, rng: np.random.Generator) -> CountSketch:
        return cls(rng.integers(0, d, n), rng.choice(np.array([-1.0, 1.0], np.float32), n), d)

    def matrix(self) -> np.ndarray:
        """(n, d) with one signed 1 per row: ``x @ matrix()`` is the sketch."""
        m = np.zeros((len(self.h), self.d), np.float32)
        m[np.arange(len(self.h)), self.h] = self.s
        return m

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """(B, n) -> (B, d)."""
        return x.astype(np.float32, copy=False) @ self.matrix()


def sketches(dims: tuple[int, int], d: int, seed: int) -> tuple[CountSketch, CountSketch]:
    """The two count sketches of a tensor sketch, fixed by ``seed`` (the same hashes every run)."""
    rng = np.random.default_rng(seed)
    return CountSketch.draw(dims[0], d, rng), CountSketch.draw(dims[1], d, rng)


def tensor_sketch(x: np.ndarray, y: np.ndarray, cx: CountSketch, cy: CountSketch) -> np.ndarray:
    """(B, m), (B, n) -> (B, d): the count sketch of each row's outer product, via FFT (float32)."""
    fx = np.fft.rfft(cx(x).astype(np.float64), axis=1)
    fy = np.fft.rfft(cy(y).astype(np.float64), axis=1)
    return np.fft.irfft(fx * fy, n=cx.d, axis=1).astype(np.float32)


def dense_reference(x: np.ndarray, y: np.ndarray, cx: CountSketch, cy: CountSketch) -> np.ndarray:
    """The same sketch the slow way, through the (B, m * n) outer products (tests only)."""
    outer = np.einsum("bi,bj->bij", x, y).reshape(len(x), -1)  # (B, m*n)
    bucket = (cx.h[:, None] + cy.h[None, :]) % cx.d  # (m, n)
    sign = cx.s[:, None] * cy.s[None, :]
    out = np.zeros((len(x), cx.d), np.float64)
    for b in range(len(x)):
        np.add.at(out[b], bucket.ravel(), (outer[b] * sign.ravel()).astype(np.float64))
    return out.astype(np.float32)

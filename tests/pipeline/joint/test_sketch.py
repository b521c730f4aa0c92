"""Tensor Sketch against the dense outer product it compresses."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.joint.feature import JOINTS
from pipeline.joint.sketch import CountSketch, dense_reference, sketches, tensor_sketch


def probs(rng: np.random.Generator, b: int, n: int) -> np.ndarray:
    x = rng.random((b, n)).astype(np.float32) ** 4  # peaked, like class probabilities
    return x / x.sum(axis=1, keepdims=True)


def test_tensor_sketch_equals_the_count_sketch_of_the_outer_product():
    rng = np.random.default_rng(0)
    x, y = probs(rng, 5, 13), probs(rng, 5, 11)
    cx, cy = sketches((13, 11), 32, seed=3)
    got = tensor_sketch(x, y, cx, cy)  # (5, 32), via FFT: no outer product formed
    np.testing.assert_allclose(got, dense_reference(x, y, cx, cy), rtol=1e-4, atol=1e-6)


def test_count_sketch_matrix_has_one_signed_one_per_row():
    cs = CountSketch.draw(50, 8, np.random.default_rng(1))
    m = cs.matrix()
    assert m.shape == (50, 8) and (np.abs(m).sum(axis=1) == 1).all()
    x = np.random.default_rng(2).random((3, 50)).astype(np.float32)
    want = np.stack([np.bincount(cs.h, weights=row * cs.s, minlength=8) for row in x])
    np.testing.assert_allclose(cs(x), want, rtol=1e-5, atol=1e-6)


def test_inner_products_of_outer_products_are_preserved_on_average():
    rng = np.random.default_rng(4)
    x, y = probs(rng, 2, 40), probs(rng, 2, 30)
    exact = float(np.dot(x[0], x[1]) * np.dot(y[0], y[1]))  # <x0 (x) y0, x1 (x) y1>
    est = [
        float(np.dot(*tensor_sketch(x, y, *sketches((40, 30), 512, seed)))) for seed in range(200)
    ]  # unbiased estimator: its mean over hash draws converges
    assert abs(np.mean(est) - exact) < 0.1 * exact
    norm = float(np.dot(x[0], x[0]) * np.dot(y[0], y[0]))
    self_est = np.mean(
        [float(np.sum(tensor_sketch(x[:1], y[:1], *sketches((40, 30), 512, s)) ** 2)) for s in range(50)]
    )
    assert abs(self_est - norm) < 0.1 * norm


def test_scene_action_is_deterministic_and_batch_independent():
    joint = JOINTS.get("scene_action")(JOINTS.get("scene_action").config(dim=64, seed=0))
    rng = np.random.default_rng(5)
    x = {"scene": probs(rng, 4, 365), "action": probs(rng, 4, 400)}
    out = joint.combine(x)
    assert out.shape == (4, 64) and out.dtype == np.float32
    one = joint.combine({k: v[2:3] for k, v in x.items()})
    np.testing.assert_allclose(one[0], out[2], rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(joint.combine(x), out)
    other = JOINTS.get("scene_action")(JOINTS.get("scene_action").config(dim=64, seed=1)).combine(x)
    assert not np.allclose(other, out)  # the seed picks the hashes


@pytest.mark.parametrize("output", ["pool", "probs"])
def test_two_stream_averages_the_streams(output):
    cls = JOINTS.get("i3d_two_stream")
    joint = cls(cls.config(output=output))
    assert {r: i.column for r, i in joint.inputs().items()} == {"rgb": f"i3d_{output}", "flow": f"i3d_flow_{output}"}
    rgb, flow = np.ones((2, 6), np.float32), np.full((2, 6), 3.0, np.float32)
    np.testing.assert_array_equal(joint.combine({"rgb": rgb, "flow": flow}), np.full((2, 6), 2.0, np.float32))
    assert joint.dim({"rgb": 6, "flow": 6}) == 6

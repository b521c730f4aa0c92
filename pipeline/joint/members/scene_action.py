"""``scene_action``: the outer product of the scene and action class probabilities, compressed by Tensor Sketch.

The multimodal 3D-CNN paper joins each video's scene probabilities (``scene_probs``, 365 Places
classes) and action probabilities (``i3d_probs``, 400 Kinetics classes) into their outer product:
146,000 numbers per video. Tensor Sketch (compact bilinear pooling) compresses it to ``dim`` without
forming it (``pipeline.joint.sketch``), keeps every class pair's mass (no class is dropped) and
preserves inner products in expectation, so distances between videos mean what they meant in
the full product. The hashes are drawn from ``seed``: the same feature space every run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache

import numpy as np

from pipeline.core.modality import ModalityReduceConfig
from pipeline.joint.feature import Input, Joint, register
from pipeline.joint.sketch import sketches, tensor_sketch


@dataclass(frozen=True)
class SceneActionConfig:
    dim: int  # sketch size d (the full outer product has scene classes x action classes entries)
    seed: int  # draws the two count sketches' hashes and signs

    def __post_init__(self) -> None:
        if self.dim < 2:
            raise ValueError("dim must be >= 2")


@cache
def _sketches(m: int, n: int, d: int, seed: int):
    return sketches((m, n), d, seed)


@register("scene_action")
class SceneAction(Joint):
    config = SceneActionConfig
    reduce_defaults = ModalityReduceConfig(n_components=80)

    def inputs(self) -> dict[str, Input]:
        return {"scene": Input("scene", "scene_probs"), "action": Input("i3d", "i3d_probs")}

    def dim(self, dims: Mapping[str, int]) -> int:
        return self.cfg.dim

    def combine(self, x: Mapping[str, np.ndarray]) -> np.ndarray:
        scene, action = x["scene"], x["action"]  # (B, 365), (B, 400)
        cs, ca = _sketches(scene.shape[1], action.shape[1], self.cfg.dim, self.cfg.seed)
        return tensor_sketch(scene, action, cs, ca)  # (B, dim)

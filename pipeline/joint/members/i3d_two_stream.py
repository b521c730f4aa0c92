"""``i3d_two_stream``: two-stream I3D, the mean of the RGB (``i3d``) and optical-flow (``i3d_flow``) streams.

The I3D paper trains the two streams separately and averages their predictions at test time;
``output: probs`` averages the two class-probability vectors (both extractors need ``probs: true``),
``output: pool`` the two 2048-d pooled features (the vector a downstream model fuses).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np

from pipeline.core.modality import ModalityReduceConfig
from pipeline.core.store import StoreError
from pipeline.joint.feature import Input, Joint, register


@dataclass(frozen=True)
class TwoStreamConfig:
    output: Literal["pool", "probs"]  # average the pooled features or the class probabilities


@register("i3d_two_stream")
class TwoStream(Joint):
    config = TwoStreamConfig
    reduce_defaults = ModalityReduceConfig(n_components=80)

    def inputs(self) -> dict[str, Input]:
        out = self.cfg.output
        return {"rgb": Input("i3d", f"i3d_{out}"), "flow": Input("i3d_flow", f"i3d_flow_{out}")}

    def dim(self, dims: Mapping[str, int]) -> int:
        if dims["rgb"] != dims["flow"]:  # e.g. a flow stream with another head than the RGB one
            raise StoreError(f"i3d_two_stream: the streams' vectors differ in size ({dims['rgb']} vs {dims['flow']})")
        return dims["rgb"]

    def combine(self, x: Mapping[str, np.ndarray]) -> np.ndarray:
        return ((x["rgb"] + x["flow"]) * 0.5).astype(np.float32)  # (B, D)

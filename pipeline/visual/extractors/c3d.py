"""``c3d``: C3D (``models.c3d``) fc6/fc7 on 16-frame clips covering the decoded frames, averaged.

Preprocessing follows the paper's geometry: frames resized so the square decoded frame is
128 px (the paper resizes to 128x171), centre crop 112 -- the same vertical field of view.
Pixel values stay in 0..255 RGB, as the PyTorch conversion of the Sports-1M weights expects.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pipeline.core.modality import ModalityReduceConfig
from pipeline.visual.extractor import Extractor, register

if TYPE_CHECKING:
    import torch
    from torch import nn

RESIZE = 128
CLIP_LEN, CROP, FEATURE_DIM = 16, 112, 4096  # as models.c3d (a test keeps them equal), without importing torch


@dataclass(frozen=True)
class C3DConfig:
    weights: str  # random | sports1m (a local file: no standard download) | path to a state dict
    layer: Literal["fc6", "fc7"]


@register("c3d")
class C3DExtractor(Extractor):
    config = C3DConfig
    reduce_defaults = ModalityReduceConfig(n_components=160)
    local_only_weights = {
        "sports1m": "there is no standard download of the Sports-1M C3D weights; convert the original "
        "Caffe model to a state dict (e.g. c3d.pickle from github.com/DavideA/c3d-pytorch, "
        "same layer names)",
    }
    # fc6 reads all 8192 pooled conv5b activations at once; in float it costs 0.1% of the FLOPs and takes
    # the fc6 features' int8 error from 3.4% to 3.0% (random weights; the convolutions carry the rest).
    int8_float_layers = ("model.fc6",)

    @classmethod
    def vector_column(cls, cfg: C3DConfig) -> str:
        return f"c3d_{cfg.layer}"

    @property
    def column(self) -> str:
        return self.vector_column(self.cfg)

    def build(self) -> nn.Module:
        from models.c3d import C3D

        return C3D()

    def preprocess(self, frames: torch.Tensor) -> torch.Tensor:
        from pipeline.visual.clips import covering_clips, gather_clips, resize_center_crop, to_float_frames

        x = to_float_frames(frames).mul_(255.0)  # (B*T, 3, H, W) in 0..255
        x = resize_center_crop(x, RESIZE, CROP)  # (B*T, 3, 112, 112)
        return gather_clips(x, frames.shape[0], covering_clips(self.num_frames, CLIP_LEN))  # (B*n, 3, 16, 112, 112)

    def head(self, model: nn.Module) -> nn.Module:
        from torch import nn

        class Features(nn.Module):  # the fc6 / fc7 activations as the module's output
            def __init__(self, model: nn.Module, layer: str):
                super().__init__()
                self.model, self.layer = model, layer

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                return self.model.features(x, self.layer)

        return Features(model, self.cfg.layer)  # -> (B*n, 4096)

    def aggregate(self, feats: torch.Tensor, batch: int) -> dict[str, torch.Tensor]:
        return {self.column: feats.float().view(batch, -1, FEATURE_DIM).mean(dim=1)}  # (B, 4096)

    def dims(self) -> dict[str, list[int]]:
        return {self.column: [FEATURE_DIM]}

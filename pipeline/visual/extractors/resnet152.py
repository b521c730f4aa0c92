"""``resnet152``: torchvision ResNet-152 per frame, pooled 2048-d or 1000-d logits, mean over the frames.

``num_frames`` of the T decoded frames (evenly spread; 0 = all T) go through the network: on a
CPU without bf16 support ResNet-152 runs ~6 frames/s on 2 cores, so 8 of 32 frames keep the
sample corpus quick while a GPU user can afford every frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pipeline.core.modality import ModalityReduceConfig
from pipeline.visual.extractor import Extractor, register

if TYPE_CHECKING:
    import torch
    from torch import nn

DIMS = {"pool": 2048, "logits": 1000}


@dataclass(frozen=True)
class Resnet152Config:
    weights: str  # random | imagenet (IMAGENET1K_V1) | imagenet_v2 | path to a state dict
    output: Literal["pool", "logits"]  # 2048-d pooled layer or 1000-d ImageNet logits
    keep_sequence: bool  # also store the per-frame (F, D) sequence
    num_frames: int  # F frames per video through ResNet, spread evenly over the decoded T; 0 = all T

    def __post_init__(self) -> None:
        if self.num_frames < 0:
            raise ValueError("num_frames must be >= 0 (0 = every decoded frame)")


def _imagenet(version: str):
    from torchvision.models import ResNet152_Weights

    return getattr(ResNet152_Weights, version).get_state_dict(progress=False)


@register("resnet152")
class ResNet152(Extractor):
    config = Resnet152Config
    reduce_defaults = ModalityReduceConfig(n_components=80)
    named_weights = {
        # V1 is the original release the source papers used; V2 is torchvision's newer recipe.
        "imagenet": lambda: _imagenet("IMAGENET1K_V1"),
        "imagenet_v2": lambda: _imagenet("IMAGENET1K_V2"),
    }
    # The first block of each stage (layer1.0 ... layer4.0: the stride and the projection shortcut) sets
    # the scale of the residual stream its stage adds to; quantised, its error runs through every later
    # block. Kept in float (12% of the FLOPs), the pooled features' error falls from 2.5% to 1.2% (mean;
    # max 3.8% -> 2.0%, random weights, docs/stages/visual.md). Paths in head(): layer1 is module 4.
    int8_float_layers = ("4.0", "5.0", "6.0", "7.0")

    @classmethod
    def vector_column(cls, cfg: Resnet152Config) -> str:
        return f"resnet152_{cfg.output}"

    @property
    def column(self) -> str:
        return self.vector_column(self.cfg)

    def build(self) -> nn.Module:
        from torchvision.models import resnet152

        # Random init with the last BatchNorm of every residual branch at zero: with BatchNorm's default
        # running statistics, 50 blocks of the plain init grow activations to ~3e8, where bf16 rounding
        # swamps the differences between videos (the sample corpus's conclusions flipped between fp32 and
        # bf16 CPUs). Loaded weights overwrite these values, so pretrained features are unchanged.
        return resnet152(weights=None, zero_init_residual=True)

    @property
    def frames_used(self) -> int:
        return self.cfg.num_frames or self.num_frames

    def preprocess(self, frames: torch.Tensor) -> torch.Tensor:
        from pipeline.visual.clips import imagenet_frames

        return imagenet_frames(frames, self.frames_used)  # (B*F, 3, H, W)

    def head(self, model: nn.Module) -> nn.Module:
        from torch import nn

        m = model
        layers = [m.conv1, m.bn1, m.relu, m.maxpool, m.layer1, m.layer2, m.layer3, m.layer4, m.avgpool, nn.Flatten(1)]
        return nn.Sequential(*layers, *([m.fc] if self.cfg.output == "logits" else []))  # -> (B*T, D)

    def aggregate(self, feats: torch.Tensor, batch: int) -> dict[str, torch.Tensor]:
        seq = feats.float().view(batch, -1, feats.shape[1])  # (B, F, D)
        out = {self.column: seq.mean(dim=1)}
        if self.cfg.keep_sequence:
            out[f"{self.column}_seq"] = seq.flatten(1)  # (B, F*D), dims [F, D] in the metadata
        return out

    def dims(self) -> dict[str, list[int]]:
        d = DIMS[self.cfg.output]
        dims = {self.column: [d]}
        if self.cfg.keep_sequence:
            dims[f"{self.column}_seq"] = [self.frames_used, d]
        return dims

"""``i3d``: pytorchvideo I3D-R50 (``i3d_r50``), 2048-d features before the projection layer.

``num_frames`` frames are taken from the decoded frames (``uniform``: one clip spread over all
of them; ``clips``: consecutive clips covering them, features averaged). Frames are normalised
as pytorchvideo's Kinetics models expect (mean 0.45, std 0.225). The last residual stage's
output is averaged over time and space: for 8 frames at 224 px this is exactly the head's
(4, 7, 7) average pool, and it also works for other frame counts and sizes.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pipeline.core.modality import ModalityReduceConfig
from pipeline.visual.extractor import Extractor, register

if TYPE_CHECKING:
    import torch
    from torch import nn

KINETICS_MEAN = (0.45, 0.45, 0.45)
KINETICS_STD = (0.225, 0.225, 0.225)
FEATURE_DIM = 2048


@dataclass(frozen=True)
class I3DConfig:
    weights: str  # random | kinetics | path to a state dict
    num_frames: int  # frames per I3D clip, taken from the decoded frames
    sampling: Literal["uniform", "clips"]  # one clip spread over all frames | consecutive clips, averaged

    def __post_init__(self) -> None:
        if self.num_frames < 1:
            raise ValueError("num_frames must be >= 1")


def _hub():
    with warnings.catch_warnings():  # pytorchvideo's fvcore import warns that torch.jit.script is deprecated
        warnings.simplefilter("ignore", FutureWarning)
        from pytorchvideo.models import hub
        from pytorchvideo.models.hub import resnet
    return hub, resnet


def _kinetics() -> dict[str, torch.Tensor]:
    import torch

    checkpoint_paths = _hub()[1].checkpoint_paths
    checkpoint = torch.hub.load_state_dict_from_url(checkpoint_paths["i3d_r50"], map_location="cpu", progress=False)
    return checkpoint["model_state"]


@register("i3d")
class I3D(Extractor):
    config = I3DConfig
    reduce_defaults = ModalityReduceConfig(n_components=80)
    named_weights = {"kinetics": _kinetics}  # I3D_8x8_R50, Kinetics-400 (pytorchvideo model zoo)

    column = "i3d_pool"

    @classmethod
    def vector_column(cls, cfg: I3DConfig) -> str:
        return cls.column

    def build(self) -> nn.Module:
        return _hub()[0].i3d_r50(pretrained=False)

    def plan(self):
        from pipeline.visual.clips import covering_clips, uniform_clip

        make = uniform_clip if self.cfg.sampling == "uniform" else covering_clips
        return make(self.num_frames, self.cfg.num_frames)  # (n_clips, num_frames)

    def preprocess(self, frames: torch.Tensor) -> torch.Tensor:
        from pipeline.visual.clips import gather_clips, normalize, to_float_frames

        x = normalize(to_float_frames(frames), KINETICS_MEAN, KINETICS_STD)  # (B*T, 3, H, W)
        return gather_clips(x, frames.shape[0], self.plan())  # (B*n, 3, t, H, W)

    def head(self, model: nn.Module) -> nn.Module:
        # Everything but the head (pool, dropout, proj): ends at (B*n, 2048, t', h', w'), then a global mean.
        from torch import nn

        class GlobalMean(nn.Module):
            def forward(self, x: torch.Tensor) -> torch.Tensor:
                return x.float().mean(dim=(2, 3, 4))  # (N, C, t, h, w) -> (N, C)

        return nn.Sequential(*model.blocks[:-1], GlobalMean())  # -> (B*n, 2048)

    def aggregate(self, feats: torch.Tensor, batch: int) -> dict[str, torch.Tensor]:
        return {self.column: feats.float().view(batch, -1, FEATURE_DIM).mean(dim=1)}  # (B, 2048)

    def dims(self) -> dict[str, list[int]]:
        return {self.column: [FEATURE_DIM]}

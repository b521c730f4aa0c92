"""``i3d``: pytorchvideo I3D-R50 (``i3d_r50``), 2048-d features before the projection layer.

``num_frames`` frames are taken from the decoded frames (``uniform``: one clip spread over all
of them; ``clips``: consecutive clips covering them, features averaged). Frames are normalised
as pytorchvideo's Kinetics models expect (mean 0.45, std 0.225). The last residual stage's
output is averaged over time and space: for 8 frames at 224 px this is exactly the head's
(4, 7, 7) average pool, and it also works for other frame counts and sizes.
"""
from __future__ import annotations

import warnings

import torch
from torch import nn

with warnings.catch_warnings():  # pytorchvideo's fvcore import warns that torch.jit.script is deprecated
    warnings.simplefilter("ignore", FutureWarning)
    from pytorchvideo.models.hub import i3d_r50
    from pytorchvideo.models.hub.resnet import checkpoint_paths

from pipeline.visual.clips import covering_clips, gather_clips, normalize, to_float_frames, uniform_clip
from pipeline.visual.extractor import Extractor, register
KINETICS_MEAN = (0.45, 0.45, 0.45)
KINETICS_STD = (0.225, 0.225, 0.225)
FEATURE_DIM = 2048


def _kinetics() -> dict[str, torch.Tensor]:
    checkpoint = torch.hub.load_state_dict_from_url(checkpoint_paths["i3d_r50"], map_location="cpu", progress=False)
    return checkpoint["model_state"]


@register("i3d")
class I3D(Extractor):
    named_weights = {"kinetics": _kinetics}  # I3D_8x8_R50, Kinetics-400 (pytorchvideo model zoo)

    column = "i3d_pool"

    def build(self) -> nn.Module:
        return i3d_r50(pretrained=False)

    def plan(self):
        make = uniform_clip if self.cfg.sampling == "uniform" else covering_clips
        return make(self.num_frames, self.cfg.num_frames)  # (n_clips, num_frames)

    def preprocess(self, frames: torch.Tensor) -> torch.Tensor:
        x = normalize(to_float_frames(frames), KINETICS_MEAN, KINETICS_STD)  # (B*T, 3, H, W)
        return gather_clips(x, frames.shape[0], self.plan())  # (B*n, 3, t, H, W)

    def head(self, model: nn.Module) -> nn.Module:
        # Everything but the head (pool, dropout, proj): ends at (B*n, 2048, t', h', w'), then a global mean.
        return nn.Sequential(*model.blocks[:-1], _GlobalMean())  # -> (B*n, 2048)

    def aggregate(self, feats: torch.Tensor, batch: int) -> dict[str, torch.Tensor]:
        return {self.column: feats.float().view(batch, -1, FEATURE_DIM).mean(dim=1)}  # (B, 2048)

    def dims(self) -> dict[str, list[int]]:
        return {self.column: [FEATURE_DIM]}


class _GlobalMean(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.float().mean(dim=(2, 3, 4))  # (N, C, t, h, w) -> (N, C)

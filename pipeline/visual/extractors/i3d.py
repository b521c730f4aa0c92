"""``i3d``: pytorchvideo I3D-R50 (``i3d_r50``), 2048-d features before the projection layer, and with
``probs: true`` the Kinetics-400 class probabilities (``i3d_probs``: the head's softmax, mean over clips).

``num_frames`` frames are taken from the decoded frames (``uniform``: one clip spread over all
of them; ``clips``: consecutive clips covering them, features averaged). Frames are normalised
as pytorchvideo's Kinetics models expect (mean 0.45, std 0.225). The last residual stage's
output is averaged over time and space: for 8 frames at 224 px this is exactly the head's
(4, 7, 7) average pool, and it also works for other frame counts and sizes. The head's projection
is linear, so applying it to that global mean gives the head's own logits.

``i3d_flow`` (``extractors/i3d_flow.py``) is the same network as the optical-flow stream.
"""

from __future__ import annotations

import warnings
from abc import abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

from pipeline.core.modality import ModalityReduceConfig
from pipeline.visual.extractor import Extractor, register

if TYPE_CHECKING:
    import torch
    from torch import nn

KINETICS_MEAN = (0.45, 0.45, 0.45)
KINETICS_STD = (0.225, 0.225, 0.225)
FEATURE_DIM = 2048
KINETICS_CLASSES = 400


@dataclass(frozen=True)
class I3DConfig:
    weights: str  # random | kinetics (i3d) | kinetics_flow (i3d_flow: a local file) | path to a state dict
    num_frames: int  # frames per I3D clip, taken from the decoded frames (i3d_flow: from the T - 1 flow frames)
    sampling: Literal["uniform", "clips"]  # one clip spread over all frames | consecutive clips, averaged
    probs: bool  # also store the Kinetics-400 class probabilities (<name>_probs; the scene_action joint reads them)

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


class I3DBase(Extractor):
    """I3D-R50 on clips of ``channels``-channel frames; subclasses say how frames become input."""

    config = I3DConfig
    reduce_defaults = ModalityReduceConfig(n_components=80)
    channels: ClassVar[int] = 3
    # The first blocks of res stages 4 and 5 (projection shortcut, stride): in float, the pooled features'
    # int8 error falls from 2.6% to 2.3% for 6% more time; also stage 3's: 2.2%, but 25% more time
    # (random weights, docs/stages/visual.md). Paths in head(): the stem is module 0, pool 2.
    int8_float_layers = ("4.res_blocks.0", "5.res_blocks.0")

    @classmethod
    def vector_column(cls, cfg: I3DConfig) -> str:
        return f"{cls.name}_pool"

    @property
    def column(self) -> str:
        return f"{self.name}_pool"

    @property
    def probs_column(self) -> str:
        return f"{self.name}_probs"

    def build(self) -> nn.Module:
        return _hub()[0].i3d_r50(pretrained=False)

    def plan(self):
        from pipeline.visual.clips import covering_clips, uniform_clip

        make = uniform_clip if self.cfg.sampling == "uniform" else covering_clips
        return make(self.num_frames, self.cfg.num_frames)  # (n_clips, num_frames)

    @abstractmethod
    def to_input(self, x: torch.Tensor) -> torch.Tensor:
        """(B*T, C, H, W) float frames in [0, 1] -> the network's normalised input, in place."""

    def preprocess(self, frames: torch.Tensor) -> torch.Tensor:
        from pipeline.visual.clips import gather_clips, to_float_frames

        x = self.to_input(to_float_frames(frames))  # (B*T, C, H, W)
        return gather_clips(x, frames.shape[0], self.plan())  # (B*n, C, t, H, W)

    def head(self, model: nn.Module) -> nn.Module:
        # Everything but the head (pool, dropout, proj): ends at (B*n, 2048, t', h', w'), then a global mean;
        # with probs, the head's projection of that mean (the logits) beside it.
        import torch
        from torch import nn

        class GlobalMean(nn.Module):
            def __init__(self, proj: nn.Module | None):
                super().__init__()
                self.proj = proj

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                pooled = x.float().mean(dim=(2, 3, 4))  # (N, C, t, h, w) -> (N, C)
                return pooled if self.proj is None else torch.cat([pooled, self.proj(pooled)], dim=1)

        proj = model.blocks[-1].proj if self.cfg.probs else None
        return nn.Sequential(*model.blocks[:-1], GlobalMean(proj))  # -> (B*n, 2048 [+ 400])

    def aggregate(self, feats: torch.Tensor, batch: int) -> dict[str, torch.Tensor]:
        clips = feats.float().view(batch, -1, feats.shape[1])  # (B, n, 2048 [+ 400])
        out = {self.column: clips[..., :FEATURE_DIM].mean(dim=1)}  # (B, 2048)
        if self.cfg.probs:  # softmax per clip, then the mean: still a distribution
            out[self.probs_column] = clips[..., FEATURE_DIM:].softmax(dim=-1).mean(dim=1)  # (B, 400)
        return out

    def dims(self) -> dict[str, list[int]]:
        return {self.column: [FEATURE_DIM]} | ({self.probs_column: [KINETICS_CLASSES]} if self.cfg.probs else {})


@register("i3d")
class I3D(I3DBase):
    named_weights = {"kinetics": _kinetics}  # I3D_8x8_R50, Kinetics-400 (pytorchvideo model zoo)

    def to_input(self, x: torch.Tensor) -> torch.Tensor:
        from pipeline.visual.clips import normalize

        return normalize(x, KINETICS_MEAN, KINETICS_STD)

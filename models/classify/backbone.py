"""A 3D CNN as a trainable module: decoded frames in, clip features out.

Takes an already built network and the two functions around it -- ``preprocess`` (decoded frames
``(B, T, S, S, 3)`` uint8 -> the network's input, e.g. ``(B*n, 3, t, H, W)``) and ``aggregate``
(the network's ``(B*n, D)`` clip features and the batch size -> ``(B, D)``). The pipeline builds
them from a visual extractor (``pipeline.classify.train.make_backbone``), so fine-tuning starts
from exactly the network, preprocessing and weights that ``visual@<name>`` extracts features with;
this module knows nothing of extractors.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


def _identity(frames: torch.Tensor) -> torch.Tensor:
    return frames


def _mean_per_video(feats: torch.Tensor, batch: int) -> torch.Tensor:
    return feats.float().view(batch, -1, feats.shape[-1]).mean(dim=1)  # (B*n, D) -> (B, D)


class Backbone(nn.Module):
    def __init__(
        self,
        net: nn.Module,
        d_out: int,
        preprocess: Callable[[torch.Tensor], torch.Tensor] | None = None,
        aggregate: Callable[[torch.Tensor, int], torch.Tensor] | None = None,
    ):
        """``net``: the network (made trainable here); ``d_out``: its feature size D; ``preprocess``:
        frames -> network input (default: as is); ``aggregate``: ``(features, batch)`` -> ``(batch, D)``
        (default: the mean of each video's consecutive rows)."""
        super().__init__()
        self.net = net.requires_grad_(True)  # a network loaded for extraction comes frozen
        self.d_out = d_out
        self.preprocess = preprocess or _identity
        self.aggregate = aggregate or _mean_per_video

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        batch = frames.shape[0]
        return self.aggregate(self.net(self.preprocess(frames)), batch)  # (B*n, D) -> (B, D)

"""A visual extractor's 3D CNN as a trainable module: decoded frames in, clip features out.

Reuses the extractor's own preprocessing, feature head and clip averaging
(``pipeline.visual.extractor``), so fine-tuning starts from exactly the network (and, through
``pipeline.visual.weights``, the weights) that ``visual@<name>`` extracts features with.
"""
from __future__ import annotations

import torch
from torch import nn

from pipeline.visual.extractor import Extractor
class Backbone(nn.Module):
    def __init__(self, extractor: Extractor, model: nn.Module):
        super().__init__()
        self.extractor = extractor
        self.net = extractor.head(model).requires_grad_(True)  # weights.load freezes it for extraction
        (self.column,) = extractor.dims()
        self.d_out = extractor.dims()[self.column][-1]

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        batch = frames.shape[0]
        x = self.extractor.preprocess(frames)  # (B, T, S, S, 3) uint8 -> (B*n, 3, t, H, W)
        return self.extractor.aggregate(self.net(x), batch)[self.column]  # (B*n, D) -> (B, D)

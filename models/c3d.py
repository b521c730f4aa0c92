"""C3D (Tran et al., ICCV 2015): eight 3x3x3 convolutions, five max-pools, fc6, fc7, fc8.

Input (B, 3, 16, 112, 112); ``features`` returns fc6 or fc7 after ReLU (4096-d). Layer
names (conv1 ... conv5b, fc6, fc7, fc8) match the widely used PyTorch conversion of the
Sports-1M Caffe model (``c3d.pickle`` from DavideA/c3d-pytorch), so that state dict loads
as is. fc8 (487 Sports-1M classes) is kept only so such state dicts load strictly.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

CLIP_LEN = 16
CROP = 112
FEATURE_DIM = 4096
SPORTS1M_CLASSES = 487


def _conv(cin: int, cout: int) -> nn.Conv3d:
    return nn.Conv3d(cin, cout, kernel_size=3, padding=1)


class C3D(nn.Module):
    def __init__(self, num_classes: int = SPORTS1M_CLASSES):
        super().__init__()
        self.conv1, self.pool1 = _conv(3, 64), nn.MaxPool3d((1, 2, 2), (1, 2, 2))  # pool1 keeps time
        self.conv2, self.pool2 = _conv(64, 128), nn.MaxPool3d(2, 2)
        self.conv3a, self.conv3b, self.pool3 = _conv(128, 256), _conv(256, 256), nn.MaxPool3d(2, 2)
        self.conv4a, self.conv4b, self.pool4 = _conv(256, 512), _conv(512, 512), nn.MaxPool3d(2, 2)
        self.conv5a, self.conv5b = _conv(512, 512), _conv(512, 512)
        self.pool5 = nn.MaxPool3d(2, 2, padding=(0, 1, 1))  # 7x7 -> 4x4, so fc6 sees 512*1*4*4
        self.fc6 = nn.Linear(8192, FEATURE_DIM)
        self.fc7 = nn.Linear(FEATURE_DIM, FEATURE_DIM)
        self.fc8 = nn.Linear(FEATURE_DIM, num_classes)
        self.relu = nn.ReLU(inplace=True)
        self._init_weights()

    def _init_weights(self) -> None:
        # He init keeps activations from vanishing through eight ReLU convs when weights are random.
        for m in self.modules():
            if isinstance(m, (nn.Conv3d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, 16, 112, 112) -> (B, 8192) pool5 output, flattened channel-major as in Caffe."""
        r = self.relu
        h = self.pool1(r(self.conv1(x)))  # (B, 64, 16, 56, 56)
        h = self.pool2(r(self.conv2(h)))  # (B, 128, 8, 28, 28)
        h = self.pool3(r(self.conv3b(r(self.conv3a(h)))))  # (B, 256, 4, 14, 14)
        h = self.pool4(r(self.conv4b(r(self.conv4a(h)))))  # (B, 512, 2, 7, 7)
        h = self.pool5(r(self.conv5b(r(self.conv5a(h)))))  # (B, 512, 1, 4, 4)
        return h.flatten(1)  # (B, 8192); flatten (not view) also works on channels_last_3d

    def features(self, x: torch.Tensor, layer: Literal["fc6", "fc7"]) -> torch.Tensor:
        """fc6 or fc7 activations after ReLU (no dropout: inference), (B, 4096)."""
        h = self.relu(self.fc6(self.trunk(x)))
        return h if layer == "fc6" else self.relu(self.fc7(h))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Sports-1M class logits, (B, num_classes)."""
        return self.fc8(self.features(x, "fc7"))

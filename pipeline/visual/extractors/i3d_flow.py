"""``i3d_flow``: the optical-flow stream of two-stream I3D, on the flow store (``stages/flow.py``).

Reads ``paths.flow`` (the decoded store's layout, frames = ``(T - 1, S, S, 2)`` uint8 flow quantised
over ``[-flow.bound, flow.bound]``), not the decoded RGB frames. The network is ``i3d``'s I3D-R50
with its first convolution taking 2 channels (x and y displacement); inputs are rescaled to
[-1, 1], as the I3D paper feeds its TV-L1 flow. Writes ``i3d_flow_pool`` (2048-d) and, with
``probs: true``, ``i3d_flow_probs`` (its 400-way head). Joint feature ``i3d_two_stream`` averages
it with the RGB stream.

There is no public PyTorch I3D-R50 flow checkpoint: ``random`` (seeded) offline, or a local state
dict of this architecture (``blocks.0.conv.weight`` of shape ``(64, 2, 5, 7, 7)``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline.visual.extractor import register
from pipeline.visual.extractors.i3d import I3DBase, _hub

if TYPE_CHECKING:
    import torch
    from torch import nn


@register("i3d_flow")
class I3DFlow(I3DBase):
    source = "flow"
    channels = 2
    local_only_weights = {
        "kinetics_flow": "there is no standard download of a Kinetics flow-stream I3D-R50; train or convert "
        "one to a state dict of this architecture (first conv with 2 input channels)",
    }

    def build(self) -> nn.Module:
        from torch import nn

        model = _hub()[0].i3d_r50(pretrained=False)
        rgb = model.blocks[0].conv  # Conv3d(3, 64, (5, 7, 7)): same geometry, 2 input channels
        model.blocks[0].conv = nn.Conv3d(
            self.channels, rgb.out_channels, rgb.kernel_size, rgb.stride, rgb.padding, bias=False
        )
        return model

    def to_input(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul_(2.0).sub_(1.0)  # [0, 1] -> [-1, 1]: the flow store's +-bound maps to +-1

"""Fusions of per-modality codes ``(B, M, D)`` with a presence mask ``(B, M)`` into one vector.

``concat`` concatenates the codes; ``attention`` weights them by a softmax of a learned score
over the present tokens, then concatenates the weighted codes (the modalities keep their own
slots, so one code cannot drown the other in a sum). A token whose modality is absent (a video
without audio) never contributes its values: attention gives it exactly zero weight, and both
put a learned "missing" embedding in its slot -- never zeros pretending to be a signal.
Each lives in its own module of this package; this one holds their base class.
"""

from __future__ import annotations

from torch import nn


class Fusion(nn.Module):
    d_out: int

    def __init__(self, n_tokens: int, dim: int):
        super().__init__()

"""Aggregations of a sequence of local features ``(B, T, D)`` into one video descriptor ``(B, d_out)``.

``mean`` is plain mean pooling; ``attention`` weights the steps by a softmax of a learned score
(weights sum to one: mean pooling is the case of equal scores); ``netvlad`` soft-assigns every
step to K learned centres and sums the residuals (Arandjelovic et al.), intra- and L2-normalised.
Each lives in its own module of this package; this one holds their base class.
"""

from __future__ import annotations

from torch import nn


class Aggregation(nn.Module):
    d_out: int

    def __init__(self, dim: int, clusters: int):
        super().__init__()

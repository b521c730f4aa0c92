"""``metammf_cp``: MetaMMF with the paper's canonical-polyadic-decomposed meta layers (rank ``sizes.rank``):
each layer's (S, d_in, d_out) tensor is a sum of R rank-one terms (``models.layers.CPMetaLinear``), so the
parameters grow with d_in + d_out instead of d_in * d_out. Everything else is ``metammf``, but for the
defaults: ``mlp`` (64, 32), two meta layers, and no dropout.
"""

from __future__ import annotations

from torch import nn

from models.layers import CPMetaLinear
from models.rec import MODELS
from models.rec.zoo.metammf import SIGNAL_DIM, MetaMmf


@MODELS.register("metammf_cp")
class MetaMmfCp(MetaMmf):
    name = "metammf_cp"
    # two CP meta layers cost what metammf's one full layer does; (32,) ranked validation lower on the
    # realistic profile. No dropout (metammf's default now; for CP it ranked validation as 0.1 does, at 2.0x
    # LightGCN's epoch against 2.2x: docs/benchmarks.md, Top-K fifth pass)
    mlp = (64, 32)

    def meta_layer(self, d_in: int, d_out: int) -> nn.Module:
        return CPMetaLinear(self.sizes.rank, SIGNAL_DIM, d_in, d_out)

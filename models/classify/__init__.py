"""The multimodal micro-video classifier: aggregation, fusion, shared/private encoders and their losses.

Torch-free on purpose: the aggregations (``models.classify.aggregations``) and fusions
(``models.classify.fusions``) are plugin packages, one module per member named as the member, so
``AGGREGATIONS.names()`` / ``FUSIONS.names()`` list them without importing torch (params validation
calls ``check``). ``build_aggregation`` / ``build_fusion`` import the one module named.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from registry import Registry

if TYPE_CHECKING:
    from models.classify.aggregations._base import Aggregation
    from models.classify.fusions._base import Fusion

AGGREGATIONS: Registry[type[Aggregation]] = Registry(
    "aggregation", key="classify.<modality>.aggregation", plugins="models.classify.aggregations"
)
FUSIONS: Registry[type[Fusion]] = Registry("fusion", key="classify.fusion", plugins="models.classify.fusions")


def build_aggregation(name: str, dim: int, clusters: int) -> Aggregation:
    """Aggregation ``name`` of ``(B, T, dim)`` sequences (``clusters``: netvlad's K); ``registry.UnknownName`` if none."""
    return AGGREGATIONS.get(name)(dim, clusters)


def build_fusion(name: str, n_tokens: int, dim: int) -> Fusion:
    """Fusion ``name`` of ``n_tokens`` codes of size ``dim``; ``registry.UnknownName`` if none."""
    return FUSIONS.get(name)(n_tokens, dim)

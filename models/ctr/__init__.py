"""CTR models, one short module each in ``models.ctr.zoo`` (module name = model name).

Torch-free on purpose: ``MODELS.names()`` lists the zoo's modules without importing them, so params
validation (``MODELS.check``) never imports torch. ``MODELS.get(name)`` / ``build`` import the one
module named, whose ``@MODELS.register`` decorator registers it. Shared code (``FeatureSpec``,
``Content``, ``CtrSizes``, the ``CtrModel`` base) lives in ``models.ctr.base``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from registry import Registry

if TYPE_CHECKING:
    from models.ctr.base import Content, CtrModel, CtrSizes, FeatureSpec

MODELS: Registry[type[CtrModel]] = Registry("CTR model", key="ctr.model", plugins="models.ctr.zoo")


def build(name: str, spec: FeatureSpec, sizes: CtrSizes, content: Content | None = None) -> CtrModel:
    """The CTR model ``name`` (random init: the caller seeds torch); ``registry.UnknownName`` if none."""
    return MODELS.get(name)(spec, sizes, content)

"""Top-K recommenders, one short module each in ``models.rec.zoo`` (module name = model name).

Torch-free on purpose, as ``models.ctr``: ``MODELS.names()`` lists the zoo without importing it, so
params validation (``MODELS.check``) never imports torch. Shared code (``RecSizes``, ``Graph``,
``Content``, the ``RecModel`` base) lives in ``models.rec.base``; builders take plain numbers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from registry import Registry

if TYPE_CHECKING:
    from models.rec.base import Content, Graph, RecModel, RecSizes

MODELS: Registry[type[RecModel]] = Registry("top-K model", key="rec.model", plugins="models.rec.zoo")


def build(name: str, sizes: RecSizes, graph: Graph, content: Content | None = None) -> RecModel:
    """The top-K model ``name`` (random init: the caller seeds torch); ``registry.UnknownName`` if none."""
    return MODELS.get(name)(sizes, graph, content)

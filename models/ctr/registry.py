"""Every CTR model by name (``ctr.model``); importing this module registers them all."""
from __future__ import annotations

from models.ctr import amfr, deepfm, din, fm, lr, mmie  # noqa: F401  (registration side effect)
from models.ctr.base import MODELS, Content, CtrModel, FeatureSpec
from pipeline.core.params import CtrConfig
class UnknownModel(ValueError):
    pass


def build_model(name: str, spec: FeatureSpec, cfg: CtrConfig, content: Content | None = None) -> CtrModel:
    if name not in MODELS:
        raise UnknownModel(f"unknown ctr.model {name!r}; registered models: {', '.join(sorted(MODELS))}")
    return MODELS[name](spec, cfg, content)

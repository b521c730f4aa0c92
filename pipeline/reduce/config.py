"""Section ``reduce``: PCA and normalisation per modality; a modality is any registered extractor, joint
feature or vector audio feature set (read from their registries when params are validated)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar, Literal

from pipeline.audio.features import FEATURE_SETS
from pipeline.core.config import Sections
from pipeline.core.modality import ModalityReduceConfig
from pipeline.joint.feature import JOINTS
from pipeline.visual.extractor import EXTRACTORS


def reduce_modalities() -> list[str]:
    """Every modality reduce can read: each registered extractor, and each audio feature set that is a vector."""
    audio = [name for name, fs in FEATURE_SETS.items() if fs.reduce_defaults is not None]
    return sorted({*EXTRACTORS.names(), *JOINTS.names(), *audio})


@dataclass(frozen=True)
class ReduceConfig:
    """Section ``reduce``: the general keys below, plus one optional ``reduce.<modality>`` section per
    modality (a registered extractor or a vector audio feature set); a modality without one uses the
    defaults its extractor or feature set declares."""

    missing: Literal["zero", "drop"]  # a video absent from a modality's store: zero-fill + mask, or drop it
    too_many_components: Literal["cap", "error"]  # n_components above min(train rows - 1, dims)
    solver: Literal["auto", "full", "randomized", "incremental"]
    max_fit_mb: int  # auto: the full solver up to this float64 training-matrix size, incremental above
    batch_rows: int  # IncrementalPCA batch size
    seed: int
    modalities: Mapping[str, ModalityReduceConfig] = field(default_factory=dict)  # reduce.<modality> sections

    __sections__: ClassVar[Sections] = Sections(
        "modalities", "reduce modality", reduce_modalities, lambda name: ModalityReduceConfig
    )

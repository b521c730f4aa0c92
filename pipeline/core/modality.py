"""What ``reduce`` does to one modality: its own module so that extractors and audio feature sets can
declare their defaults without importing the whole params schema."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pipeline.core.config import FieldError


@dataclass(frozen=True)
class ModalityReduceConfig:
    """Section ``reduce.<modality>``; a modality without one uses its extractor's declared defaults."""

    enabled: bool = True
    column: str | None = None  # the vector column in the modality's store; null: the extractor's default column
    n_components: int | float | None = None  # int: components; float in (0, 1): variance to keep; null: no PCA
    whiten: bool = False
    norm: Literal["minmax", "zscore", "none"] = "zscore"

    def __post_init__(self) -> None:
        if isinstance(self.n_components, float) and not 0 < self.n_components < 1:
            raise FieldError(
                "n_components", f"as a float is the variance to keep, in (0, 1); got {self.n_components!r}"
            )
        if isinstance(self.n_components, int) and self.n_components < 1:
            raise FieldError(
                "n_components", f"as an integer is a number of components, >= 1; got {self.n_components!r}"
            )


@dataclass(frozen=True)
class FeaturesConfig:
    """How a dataset's precomputed per-item features (``*_feat.npy``) enter a stage's item table: ``reduce``'s
    PCA + normaliser, fitted on the items with a training interaction (``rec_data.features``,
    ``ctr_data.content``)."""

    n_components: int | float | None  # int: components; float in (0, 1): variance kept; null: no PCA
    whiten: bool
    norm: Literal["minmax", "zscore", "none"]

    def __post_init__(self) -> None:
        ModalityReduceConfig(True, None, self.n_components, self.whiten, self.norm)  # the same checks as reduce.<m>

"""What ``reduce`` does to one modality: its own module so that extractors and audio feature sets can
declare their defaults without importing the whole params schema."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


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
            raise ValueError("a float n_components is a variance target in (0, 1)")
        if isinstance(self.n_components, int) and self.n_components < 1:
            raise ValueError("n_components must be >= 1")

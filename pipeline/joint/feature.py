"""Joint features: one vector per video computed from vectors of other visual stores, registered in ``JOINTS``.

A joint feature is one module ``pipeline/joint/members/<name>.py`` that declares its params section's
dataclass (``config``: ``joint.<name>``), its reduce defaults and the class: which store columns it
reads (``inputs``: role -> extractor and column), what it needs from ``visual.*`` (``problem``), its
output size and a pure, batched ``combine``. The ``joint@<name>`` stage (``stages/joint.py``) runs it
over every decoded video into ``<paths.joint_features>/joint_<name>.parquet``; ``reduce`` reads that
store as modality ``<name>``, so the classifier and the CTR / top-K content can use it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pipeline.core.config import Sections, check_members, check_rate
from pipeline.core.store import plain
from registry import Registry

if TYPE_CHECKING:
    import numpy as np

    from pipeline.core.modality import ModalityReduceConfig
    from pipeline.visual.extractor import VisualConfig

JOINTS: Registry[type[Joint]] = Registry("joint feature", key="joint.features", plugins="pipeline.joint.members")


@dataclass(frozen=True)
class Input:
    extractor: str  # a visual extractor whose store holds the column
    column: str  # a per-video vector column of visual_<extractor>.parquet


class Joint(ABC):
    name: ClassVar[str]
    config: ClassVar[type]  # the frozen dataclass of params section joint.<name>
    reduce_defaults: ClassVar[ModalityReduceConfig]  # reduce.<name> when params.yaml has no such section

    def __init__(self, cfg: Any):
        self.cfg = cfg

    @abstractmethod
    def inputs(self) -> dict[str, Input]:
        """Role -> the store column it reads, e.g. ``{"scene": Input("scene", "scene_probs"), ...}``."""

    @abstractmethod
    def dim(self, dims: Mapping[str, int]) -> int:
        """The output size, given each role's input size."""

    @abstractmethod
    def combine(self, x: Mapping[str, np.ndarray]) -> np.ndarray:
        """Role -> ``(B, D_role)`` float32 -> ``(B, dim)`` float32, for one batch of videos."""

    def problem(self, visual: VisualConfig) -> str | None:
        """Why ``visual`` params cannot feed this joint feature (checked when params load), or None."""
        for role, inp in self.inputs().items():
            if inp.extractor not in visual.extractors:
                return (
                    f"joint.{self.name} reads {inp.column} ({role}): add {inp.extractor} to visual.extractors "
                    f"or remove {self.name} from joint.features"
                )
            cfg = visual.sections[inp.extractor]
            if inp.column.endswith("_probs") and not getattr(cfg, "probs", True):
                return f"joint.{self.name} reads {inp.column} ({role}): set visual.{inp.extractor}.probs: true"
        return None

    def output_params(self) -> dict[str, Any]:
        return plain(self.cfg)


register = JOINTS.register_class  # @register("name"): registers the class and sets its ``name``


def output_paths(out_dir: str | Path, name: str) -> tuple[Path, Path]:
    out_dir = Path(out_dir)
    return out_dir / f"joint_{name}.parquet", out_dir / f"joint_{name}_failures.parquet"


@dataclass(frozen=True)
class JointConfig:
    """Section ``joint``: features computed from other visual stores (``pipeline.joint``)."""

    features: tuple[str, ...]  # registered joint features to compute: one DVC stage joint@<name> each
    max_failure_rate: float
    # joint.<name>: each registered joint feature's own section, built with the config class its module declares
    sections: Mapping[str, Any] = field(default_factory=dict)

    __sections__: ClassVar[Sections] = Sections(
        "sections", "joint feature", JOINTS.names, lambda name: JOINTS.get(name).config
    )

    def __post_init__(self) -> None:
        check_rate(self.max_failure_rate)
        check_members(self.features, JOINTS, "joint", "features", self.sections)

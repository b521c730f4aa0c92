"""Visual extractors: one interface, registered by name in ``EXTRACTORS``.

An extractor is one module ``pipeline/visual/extractors/<name>.py`` that declares everything about
it: its params section's dataclass (``config``: ``visual.<name>``), its reduce defaults
(``reduce_defaults``: PCA size and normaliser when ``reduce.<name>`` is absent) and the class. It
is configured from its params subsection (``visual.<name>``), builds its
architecture (random init; ``pipeline.visual.weights`` loads real weights into it), turns a
batch of decoded clips ``(B, T, H, W, C) uint8`` into the model input, and maps the model
output to named per-video arrays ``{column: (B, D)}``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pipeline.core.config import FieldError, Sections, at_least, check_members, check_rate
from pipeline.core.store import plain
from registry import Registry

if TYPE_CHECKING:  # extractor modules import torch only when they build a model: params validation stays light
    import torch
    from torch import nn

    from pipeline.core.modality import ModalityReduceConfig

EXTRACTORS: Registry[type[Extractor]] = Registry(
    "visual extractor", key="visual.extractors", plugins="pipeline.visual.extractors"
)


class Extractor(ABC):
    name: ClassVar[str]
    config: ClassVar[type]  # the frozen dataclass of params section visual.<name>
    reduce_defaults: ClassVar[ModalityReduceConfig]  # reduce.<name> when params.yaml has no such section
    # Named standard weights -> a callable returning a state dict (may download to the torch hub cache).
    named_weights: ClassVar[Mapping[str, Callable[[], Mapping[str, torch.Tensor]]]] = {}
    # Named weights with no download: the user must give a local path (the message says how).
    local_only_weights: ClassVar[Mapping[str, str]] = {}
    # precision int8: module paths in ``head(model)`` kept in float (measured to quantise badly)
    int8_float_layers: ClassVar[tuple[str, ...]] = ()
    # The frame store the extractor reads: "decoded" (RGB, C = 3) or "flow" (paths.flow: C = 2, T - 1 frames).
    source: ClassVar[str] = "decoded"
    channels: ClassVar[int] = 3

    def __init__(self, cfg: Any, num_frames: int):
        self.cfg = cfg  # the frozen dataclass of params section visual.<name>
        self.num_frames = num_frames  # T of the decoded clips this extractor receives

    @property
    def weights_key(self) -> str:
        return f"visual.{self.name}.weights"

    @abstractmethod
    def build(self) -> nn.Module:
        """The architecture with its own (random) init; the caller seeds the RNG."""

    @abstractmethod
    def preprocess(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, T, H, W, C) uint8 on the target device (C = ``channels``) -> float32 model input."""

    @abstractmethod
    def head(self, model: nn.Module) -> nn.Module:
        """The part of the (loaded) model that maps the input to per-frame/per-clip features, (N, D)."""

    @abstractmethod
    def aggregate(self, feats: torch.Tensor, batch: int) -> dict[str, torch.Tensor]:
        """(N, D) features of ``batch`` videos' frames or clips -> ``{column: (batch, D')}``."""

    @abstractmethod
    def dims(self) -> dict[str, list[int]]:
        """Column -> per-video shape, e.g. ``{"resnet152_pool": [2048]}``."""

    def output_params(self) -> dict[str, Any]:
        """What changes this extractor's output (goes into the store's params and params_hash)."""
        return {**plain(self.cfg), "input_frames": self.num_frames}

    @classmethod
    def vector_column(cls, cfg: Any) -> str:
        """The per-video vector column that ``reduce`` reads by default (cfg: this extractor's config)."""
        return cls.name


register = EXTRACTORS.register_class  # @register("name"): registers the class and sets its ``name``


def output_paths(out_dir: str | Path, name: str) -> tuple[Path, Path]:
    out_dir = Path(out_dir)
    return out_dir / f"visual_{name}.parquet", out_dir / f"visual_{name}_failures.parquet"


def create(name: str, cfg: VisualConfig, num_frames: int) -> Extractor:
    """The extractor ``name`` configured from ``visual.<name>``, for clips of ``num_frames`` frames."""
    return EXTRACTORS.get(name)(cfg.sections[name], num_frames)


@dataclass(frozen=True)
class VisualConfig:
    extractors: tuple[str, ...]  # registered extractors to run: one DVC stage visual@<name> each
    device: str  # auto (CUDA when present) | cpu | cuda | cuda:N
    precision: Literal["auto", "fp32", "bf16", "int8"]  # auto: bf16 where the device runs it natively, else fp32
    batch_size: int  # videos per forward pass: bounds memory whatever the corpus size
    threads: int  # CPU threads for torch; 0 = one per core
    max_failure_rate: float
    calibration_clips: int  # precision int8: training-split clips the activation ranges are calibrated on
    compiled: tuple[str, ...]  # extractors whose fp32 head runs through torch.compile (a speed choice)
    # visual.<name>: each registered extractor's own section, built with the config class its module declares
    sections: Mapping[str, Any] = field(default_factory=dict)

    __sections__: ClassVar[Sections] = Sections(
        "sections", "visual extractor", EXTRACTORS.names, lambda name: EXTRACTORS.get(name).config
    )

    def __post_init__(self) -> None:
        check_rate(self.max_failure_rate)
        check_members(self.extractors, EXTRACTORS, "visual", "extractors", self.sections)
        for i, name in enumerate(self.compiled):
            EXTRACTORS.check(name, f"visual.compiled[{i}]")
        at_least(self, 1, "batch_size")
        at_least(self, 0, "threads", meaning="0 = one per core")
        if self.calibration_clips < 1:
            raise FieldError("calibration_clips", "must be >= 1")
        if self.device != "auto" and self.device != "cpu" and not self.device.startswith("cuda"):
            raise FieldError("device", f"must be auto, cpu, cuda or cuda:N, got {self.device!r}")

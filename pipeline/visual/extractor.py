"""Extractor registry: every visual extractor has one interface and registers by name.

An extractor is configured from its params subsection (``visual.<name>``), builds its
architecture (random init; ``pipeline.visual.weights`` loads real weights into it), turns a
batch of decoded clips ``(B, T, H, W, C) uint8`` into the model input, and maps the model
output to named per-video arrays ``{column: (B, D)}``.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import torch
from torch import nn

from pipeline.core.params import VisualConfig
from pipeline.core.store import plain
_REGISTRY: dict[str, type[Extractor]] = {}


class Extractor(ABC):
    name: ClassVar[str]
    # Named standard weights -> a callable returning a state dict (may download to the torch hub cache).
    named_weights: ClassVar[Mapping[str, Callable[[], Mapping[str, torch.Tensor]]]] = {}
    # Named weights with no download: the user must give a local path (the message says how).
    local_only_weights: ClassVar[Mapping[str, str]] = {}

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
        """(B, T, H, W, C) uint8 on the target device -> float32 model input."""

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


def register(name: str) -> Callable[[type[Extractor]], type[Extractor]]:
    def deco(cls: type[Extractor]) -> type[Extractor]:
        if name in _REGISTRY:
            raise ValueError(f"extractor {name!r} registered twice")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return deco


def names() -> list[str]:
    _load_builtin()
    return sorted(_REGISTRY)


def create(name: str, cfg: VisualConfig, num_frames: int) -> Extractor:
    """The extractor ``name`` configured from ``cfg.<name>``, for clips of ``num_frames`` frames."""
    _load_builtin()
    if name not in _REGISTRY:
        raise KeyError(f"unknown extractor {name!r}; registered: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name](getattr(cfg, name), num_frames)


def _load_builtin() -> None:
    import pipeline.visual.extractors  # noqa: F401  (registers on import)

"""Torch helpers shared by the extractors and the training loops (only modules that use torch import this)."""

from __future__ import annotations

import torch

from pipeline.core.config import ConfigError


def resolve_device(device: str, key: str) -> torch.device:
    """``auto`` (CUDA when present, else CPU), ``cpu``, ``cuda`` or ``cuda:N``; CUDA asked for but absent is
    a ``ConfigError`` naming the params ``key``."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"{key}={device} but CUDA is not available; use auto or cpu")
    return torch.device(device)


def slice_batch(batch: dict[str, torch.Tensor], idx: torch.Tensor) -> dict[str, torch.Tensor]:
    """The rows ``idx`` of every tensor of a batch dict."""
    return {k: v[idx] for k, v in batch.items()}

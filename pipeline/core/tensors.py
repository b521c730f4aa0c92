"""Torch helpers shared by the extractors and the training loops (only modules that use torch import this)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch

from pipeline.core import store
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


def save(obj: Any, path: str | Path) -> Path:
    """``torch.save`` to ``path`` atomically and byte-reproducibly: saved through a buffer, the archive's
    inner folder is not named after a random temp file, so the same object gives the same bytes (and DVC
    hash) every run."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    with store.atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getvalue())
    return Path(path)

"""Tiny decoded stores and configs for the visual tests (no model weights, no network)."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pipeline.decode.decoded import DecodedWriter
from pipeline.decode.worker import decoded_meta
from pipeline.params import DecodeConfig, VisualConfig, load_params
from pipeline.visual.extractor import Extractor

REPO = Path(__file__).resolve().parents[3]


def visual_config(**changes) -> VisualConfig:
    """The repo's ``visual`` params with ``changes``; subsections by name, e.g. ``resnet152={"output": "logits"}``."""
    cfg = load_params(REPO / "params.yaml").visual
    sections = dict(cfg.sections)
    for key, value in list(changes.items()):
        if isinstance(value, dict):
            sections[key] = dataclasses.replace(cfg.sections[key], **changes.pop(key))
    return dataclasses.replace(cfg, sections=sections, **changes)


def random_frames(seed: int, t: int, s: int) -> np.ndarray:
    """(T, S, S, 3) uint8 with some structure (a moving gradient plus noise), not pure noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:s, 0:s]
    base = np.stack([(xx * 255 // s + 9 * k + 40 * seed) % 256 for k in range(t)])  # (T, S, S)
    img = np.stack([base, base[:, ::-1], np.broadcast_to(yy * 255 // s, base.shape)], axis=-1)  # (T, S, S, 3)
    return np.clip(img + rng.integers(-20, 20, img.shape), 0, 255).astype(np.uint8)


def write_decoded(
    root: Path, videos: list[tuple[str, np.ndarray | bytes, bool]], t: int, s: int, shards: int = 2
) -> Path:
    """A decoded store of (video_id, frames (T, S, S, 3) or raw bytes, padded) rows."""
    cfg = DecodeConfig(
        num_frames=t,
        sampling="uniform",
        size=s,
        audio_rate=16000,
        on_corrupt="keep",
        shards=shards,
        workers=1,
        max_failure_rate=0.5,
    )
    writer = DecodedWriter(root, shards, decoded_meta(cfg))
    for vid, frames, padded in videos:
        blob = frames if isinstance(frames, bytes) else np.ascontiguousarray(frames).tobytes()
        writer.add(
            {
                "video_id": vid,
                "fingerprint": hashlib.sha256(vid.encode()).hexdigest(),
                "frames": blob,
                "frame_indices": list(range(t)),
                "n_unique_frames": t,
                "padded": padded,
                "has_audio": False,
                "audio": b"",
                "audio_seconds": 0.0,
                "note": "",
            }
        )
    writer.close()
    return root


class TinyConv(Extractor):
    """Two convolutions and a pooled 16-d vector per frame, mean over frames: the engine's mechanics, fast."""

    name = "tinyconv"

    def __init__(self, num_frames: int = 2):
        super().__init__(cfg={"weights": "random"}, num_frames=num_frames)

    def build(self) -> nn.Module:
        torch.manual_seed(0)
        return nn.Sequential(
            nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 16, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1)
        ).eval()

    def preprocess(self, frames: torch.Tensor) -> torch.Tensor:
        return frames.flatten(0, 1).permute(0, 3, 1, 2).float() / 255  # (B*T, 3, H, W)

    def head(self, model: nn.Module) -> nn.Module:
        return nn.Sequential(model, nn.Flatten(1))

    def aggregate(self, feats: torch.Tensor, batch: int) -> dict[str, torch.Tensor]:
        return {"tinyconv": feats.float().view(batch, -1, feats.shape[1]).mean(1)}

    def dims(self) -> dict[str, list[int]]:
        return {"tinyconv": [16]}

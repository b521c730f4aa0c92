"""Tiny decoded stores and configs for the visual tests (no model weights, no network)."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import numpy as np

from pipeline.core.params import DecodeConfig, VisualConfig, load_params
from pipeline.decode.decoded import DecodedWriter
from pipeline.decode.worker import decoded_meta

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

"""Decode one manifest row into a decoded-store row (see ``pipeline.decode.decoded`` for the layout)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipeline.core import store
from pipeline.core.failures import Failure
from pipeline.decode.config import DecodeConfig
from pipeline.decode.ffmpeg import MediaError, ProbeInfo, decode_clip
from pipeline.execution.job import failure_row


def probe_info(row: Mapping[str, Any]) -> ProbeInfo:
    """Rebuild the probe result ingest stored in the manifest (no second ffprobe)."""
    fields = ProbeInfo.__dataclass_fields__
    return ProbeInfo(**{k: row[k] for k in fields})


def decode_row(row: Mapping[str, Any], cfg: DecodeConfig) -> dict[str, Any] | Failure:
    try:
        clip = decode_clip(row["path"], probe_info(row), cfg.num_frames, cfg.sampling, cfg.size, cfg.audio_rate)
    except MediaError as err:
        return Failure(row["video_id"], row["path"], "decode", err.reason, str(err), row["fingerprint"])
    if clip.decode_errors and cfg.on_corrupt == "fail":
        message = f"ffmpeg reported {clip.decode_errors} decoder errors, e.g.: {clip.first_error}"
        return Failure(row["video_id"], row["path"], "decode", "corrupt_stream", message, row["fingerprint"])
    audio = clip.audio if clip.audio is not None else np.zeros(0, np.float32)
    return {
        "video_id": row["video_id"],
        "fingerprint": row["fingerprint"],
        "frames": np.ascontiguousarray(clip.frames).tobytes(),  # (T, S, S, 3) uint8
        "frame_indices": clip.indices.astype(np.int32).tolist(),
        "n_unique_frames": clip.n_unique,
        "padded": clip.padded,
        "has_audio": clip.audio is not None,
        "audio": audio.astype("<f4").tobytes(),
        "audio_seconds": float(audio.size / cfg.audio_rate),
        "decode_errors": clip.decode_errors,
        "note": clip.note,
    }


@dataclass(frozen=True)
class DecodeWorker:
    """The executor's worker: manifest rows in, decoded-store rows (or failure rows) out."""

    cfg: DecodeConfig

    def __call__(self, batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for row in batch:
            result = decode_row(row, self.cfg)
            if isinstance(result, Failure):
                result = failure_row(result.video_id, row["fingerprint"], result.reason, result.message)
            out.append(result)
        return out


def decoded_meta(cfg: DecodeConfig) -> dict[str, Any]:
    size = cfg.size
    # Only what changes the output goes into params (and so params_hash): not workers, not which
    # manifest listed the video (the fingerprint says what the video is).
    # on_corrupt decides which damaged videos are stored; it also makes stores written before the
    # decode_errors column existed be decoded again rather than reused.
    output_params = {
        "num_frames": cfg.num_frames,
        "sampling": cfg.sampling,
        "size": size,
        "audio_rate": cfg.audio_rate,
        "on_corrupt": cfg.on_corrupt,
    }
    return store.make_meta(
        "decode",
        params=output_params,
        shards=cfg.shards,
        dims={"frames": [cfg.num_frames, size, size, 3]},
        frame_layout="THWC",
        frame_dtype="uint8",
        audio_dtype="float32",
        audio_rate=cfg.audio_rate,
    )

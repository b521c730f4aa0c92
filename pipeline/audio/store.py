"""The audio feature store: one row per decoded video (``paths.audio_features``).

A folder of ``shard-XXX.parquet`` files (``pipeline.core.shards``: updated incrementally, the decoded
store's shard assignment). Columns: ``video_id`` (string), ``fingerprint`` (the video's content
hash), ``has_audio`` (bool), ``audio_seconds`` (float32, decoded audio
length before any padding), then one ``fixed_size_list<float32>`` column per enabled feature set
of ``pipeline.audio.features.FEATURE_SETS`` (``logmel_segments`` flattened row-major from
``[segments, n_mels]``). The schema metadata records ``dims``, ``feature_names`` (the names of
each set's last axis) and what pyAudioAnalysis was given.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from importlib.metadata import version
from typing import Any

import librosa
import numpy as np
import pyarrow as pa

from pipeline.audio import features as audio
from pipeline.audio.features import AudioConfig
from pipeline.core import store
from pipeline.core.failures import Failure
from pipeline.decode.decoded import DECODE_ERRORS, DecodedVideo, ShardReader
from pipeline.execution.job import failure_row

STAGE = "audio"
BASE_SCHEMA = [
    ("video_id", pa.string()),
    ("fingerprint", pa.string()),
    ("has_audio", pa.bool_()),
    ("audio_seconds", pa.float32()),
    (DECODE_ERRORS, pa.int32()),  # decode's flag, carried: > 0 = damaged data (kept); null = stored before it existed
]
PYAA_INPUT = (
    "float64 mono samples in [-1, 1] times 2**15 (int16 scale, not rounded); the library "
    "divides by 2**15 and peak-normalises the clip, so energy features are relative to the peak"
)


def extract_video(video: DecodedVideo, cfg: AudioConfig, source: str = "") -> dict[str, Any] | Failure:
    """One decoded video -> a store row (numpy arrays per feature set) or a ``Failure``."""
    samples = video.audio if video.has_audio else None
    try:
        values = audio.features(samples, video.audio_rate, cfg)
    except (ValueError, librosa.ParameterError) as err:  # non-finite samples, or a library rejecting its input
        return Failure(video.video_id, source, STAGE, "extract_error", str(err))
    has_audio = samples is not None and samples.size > 0
    seconds = samples.size / video.audio_rate if has_audio else 0.0
    return {
        "video_id": video.video_id,
        "fingerprint": video.fingerprint,
        "has_audio": has_audio,
        "audio_seconds": seconds,
        **values,
    }


class AudioWorker:
    """The executor's worker: {video_id, fingerprint, shard} rows in, store rows (or failures) out.

    Built once per worker: it warms librosa up (numba compile) and reads the audio itself
    from the decoded store at ``root``.
    """

    def __init__(self, cfg: AudioConfig, root: str):
        self.cfg, self.root = cfg, root
        self.reader = ShardReader(root)
        audio.warm_up(cfg)

    def __call__(self, batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for row in batch:
            video = self.reader.read(row["shard"], row["video_id"], frames=False, audio=True)
            result = extract_video(video, self.cfg)
            if isinstance(result, Failure):
                result = failure_row(row["video_id"], row["fingerprint"], result.reason, result.message)
            out.append(result)
        return out


def schema(cfg: AudioConfig) -> pa.Schema:
    sets = [
        (name, store.vector_type(int(np.prod(audio.FEATURE_SETS.get(name).shape(cfg))))) for name in audio.enabled(cfg)
    ]
    return pa.schema(BASE_SCHEMA + sets)


def to_table(rows: list[Mapping[str, Any]], cfg: AudioConfig) -> pa.Table:
    rows = sorted(rows, key=lambda r: r["video_id"])
    columns: dict[str, pa.Array] = {
        "video_id": pa.array([r["video_id"] for r in rows], pa.string()),
        "fingerprint": pa.array([r["fingerprint"] for r in rows], pa.string()),
        "has_audio": pa.array([bool(r["has_audio"]) for r in rows], pa.bool_()),
        "audio_seconds": pa.array([r["audio_seconds"] for r in rows], pa.float32()),
        DECODE_ERRORS: pa.array([r.get(DECODE_ERRORS) for r in rows], pa.int32()),
    }
    for name in audio.enabled(cfg):
        dim = int(np.prod(audio.FEATURE_SETS.get(name).shape(cfg)))
        matrix = np.stack([np.asarray(r[name]).reshape(-1) for r in rows]) if rows else np.zeros((0, dim))
        columns[name] = store.vector_array(matrix.reshape(len(rows), dim))  # (N, D), row-major per set
    return pa.table(columns, schema=schema(cfg))


def output_params(cfg: AudioConfig) -> dict[str, Any]:
    """The params that change the store (not workers or max_failure_rate): they make params_hash."""
    params = asdict(cfg)
    for key in ("workers", "max_failure_rate"):
        params.pop(key)
    return params


def store_meta(cfg: AudioConfig, source_rate: int, decoded_hash: str | None = None, shards: int = 1) -> dict[str, Any]:
    n_fft, hop = audio.stft_sizes(cfg)
    window, step = audio.pyaa_sizes(cfg)
    sets = audio.enabled(cfg)
    return store.make_meta(
        STAGE,
        params=output_params(cfg),
        extractor=f"librosa {librosa.__version__}, pyAudioAnalysis {version('pyAudioAnalysis')}",
        weights=None,
        dims={name: list(audio.FEATURE_SETS.get(name).shape(cfg)) for name in sets},
        feature_names={name: audio.FEATURE_SETS.get(name).names(cfg) for name in sets},
        layout={"logmel_segments": "row-major [segments, n_mels]; dB re power 1.0, floor -100 dB"},
        source_audio_rate=source_rate,
        resampled=source_rate != cfg.sample_rate,
        resample_type=audio.RESAMPLE_TYPE,
        stft={"n_fft": n_fft, "hop_length": hop, "window": "hann", "center": True},
        pyaa={"window": window, "step": step, "input": PYAA_INPUT},
        decoded_params_hash=decoded_hash,
        shards=shards,
    )

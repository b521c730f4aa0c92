"""A synthetic classify corpus: items.parquet, a visual store with per-frame sequences, an audio store.

Each video's label is (visual bit, audio bit); visual inputs carry only the visual bit and audio
inputs only the audio bit, as in the sample corpus; every seventh video has no audio.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from pipeline.core import store
from pipeline.reduce.fit import ModalityState, save_states

VISUAL, AUDIO = ("warm", "cool"), ("tone", "noise")
FRAMES, VIS_DIM, SEGMENTS, MELS, VEC_DIM = 4, 6, 5, 3, 4


def corpus(n: int = 48, seed: int = 0, noise: float = 0.3) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    v, a = np.arange(n) % 2, (np.arange(n) // 2) % 2
    heard = np.arange(n) % 7 != 3
    split = np.array(["train", "train", "train", "valid", "test"] * n)[:n]
    seq = rng.normal(0, noise, (n, FRAMES, VIS_DIM)).astype(np.float32)  # (N, F, D)
    seq[:, :, 0] += (2 * v - 1)[:, None]
    mel = rng.normal(0, noise, (n, SEGMENTS, MELS)).astype(np.float32)  # (N, S, M)
    mel[:, :, 0] += (2 * a - 1)[:, None]
    mel[~heard] = 0.0
    return {
        "video_id": np.array([f"v{i:03d}" for i in range(n)]),
        "v": v,
        "a": a,
        "heard": heard,
        "split": split,
        "seq": seq,
        "mel": mel,
        "label": np.array([f"{VISUAL[x]}_{AUDIO[y]}" for x, y in zip(v, a)], dtype=object),
    }


def write_stores(root: Path, c: dict[str, np.ndarray], labels: list[str | None] | None = None) -> None:
    """features/items.parquet, features/reduce_state/ and, in features/stores/, visual_resnet152.parquet and
    audio.parquet under ``root`` (the default paths of params.yaml).

    The reduce state of resnet152 halves every value (PCA off, scale 2): visible when projected.
    """
    n = len(c["video_id"])
    labels = list(c["label"]) if labels is None else labels
    ids = pa.array(c["video_id"].tolist())
    items = {
        "video_id": ids,
        "split": pa.array(c["split"].tolist()),
        "label": pa.array(labels, pa.string()),
        "has_audio": pa.array(c["heard"]),
        "resnet152": store.vector_array(c["seq"].mean(1)),
        "resnet152_present": pa.array(np.ones(n, bool)),
        "mfcc": store.vector_array(np.concatenate([c["mel"].mean(1), np.zeros((n, 1), np.float32)], 1)),
        "mfcc_present": pa.array(c["heard"]),
    }
    feats = root / "features"
    state = ModalityState(
        "resnet152",
        np.zeros(VIS_DIM),
        np.eye(VIS_DIM),
        np.ones(VIS_DIM),
        np.ones(VIS_DIM) / VIS_DIM,
        False,
        np.zeros(VIS_DIM),
        np.full(VIS_DIM, 2.0),
        {},
    )
    save_states(feats / "reduce_state", {"resnet152": state}, {})
    store.write_table(pa.table(items), feats / "items.parquet", store.make_meta("reduce"))
    visual = {
        "video_id": ids,
        "resnet152_pool": store.vector_array(c["seq"].mean(1)),
        "resnet152_pool_seq": store.vector_array(c["seq"].reshape(n, -1)),
    }
    store.write_table(
        pa.table(visual),
        feats / "stores" / "visual_resnet152.parquet",
        store.make_meta(
            "visual", extractor="resnet152", dims={"resnet152_pool": [VIS_DIM], "resnet152_pool_seq": [FRAMES, VIS_DIM]}
        ),
    )
    audio = {
        "video_id": ids,
        "has_audio": pa.array(c["heard"]),
        "logmel_segments": store.vector_array(c["mel"].reshape(n, -1)),
    }
    store.write_table(
        pa.table(audio),
        feats / "stores" / "audio.parquet",
        store.make_meta("audio", dims={"logmel_segments": [SEGMENTS, MELS]}),
    )

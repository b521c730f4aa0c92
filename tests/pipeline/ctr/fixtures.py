"""Synthetic CTR inputs: a reduce-like ``items.parquet`` whose vectors encode the sample's patterns."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv

from pipeline import store

DIMS = {"resnet152": 8, "mfcc": 4}


def synthetic_items(manifest_csv: Path, out: Path, seed: int = 0, noise: float = 0.3) -> Path:
    """Visual vectors carry the visual pattern, audio vectors the audio pattern (absent audio: masked)."""
    man = pcsv.read_csv(manifest_csv, convert_options=pcsv.ConvertOptions(strings_can_be_null=True))
    rng = np.random.default_rng(seed)
    n = man.num_rows
    visual = np.asarray([v == "warm" for v in man.column("visual").to_pylist()], float)
    audio_tag = man.column("audio").to_pylist()
    heard = np.asarray([a is not None and a != "" for a in audio_tag])
    audio = np.asarray([a == "tone" for a in audio_tag], float)
    cols = {"video_id": man.column("video_id"), "split": pa.array(["train"] * n),
            "label": man.column("label"), "has_audio": pa.array(heard)}
    for name, signal, present in (("resnet152", visual, np.ones(n, bool)), ("mfcc", audio, heard)):
        x = rng.normal(0, noise, (n, DIMS[name])).astype(np.float32)  # (N, D)
        x[:, 0] += 2 * signal - 1
        x[~present] = 0.0
        cols[name] = store.vector_array(x)
        cols[f"{name}_present"] = pa.array(present)
    dims = {k: [v] for k, v in DIMS.items()}
    return store.write_table(pa.table(cols), out, store.make_meta("reduce", dims=dims))

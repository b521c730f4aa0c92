"""Synthetic CTR inputs: a reduce-like ``items.parquet`` whose vectors encode the sample's patterns."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv

from pipeline.core import store

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
    cols = {
        "video_id": man.column("video_id"),
        "split": pa.array(["train"] * n),
        "label": man.column("label"),
        "has_audio": pa.array(heard),
    }
    for name, signal, present in (("resnet152", visual, np.ones(n, bool)), ("mfcc", audio, heard)):
        x = rng.normal(0, noise, (n, DIMS[name])).astype(np.float32)  # (N, D)
        x[:, 0] += 2 * signal - 1
        x[~present] = 0.0
        cols[name] = store.vector_array(x)
        cols[f"{name}_present"] = pa.array(present)
    dims = {k: [v] for k, v in DIMS.items()}
    return store.write_table(pa.table(cols), out, store.make_meta("reduce", dims=dims))


def ingest_manifest(manifest_csv: Path, out: Path) -> Path:
    """The manifest as stage ingest writes it (Parquet, its metadata), for stages that read the ingest output."""
    man = pcsv.read_csv(manifest_csv, convert_options=pcsv.ConvertOptions(strings_can_be_null=True))
    return store.write_table(man, out, store.make_meta("ingest"))


def planted_log(folder: Path, seed: int = 0, n_users: int = 80, n_items: int = 50, per_user: int = 25) -> None:
    """``interactions.csv`` + ``videos/manifest.csv`` where users click the visual pattern they like.

    A fifth of the videos is published late (cold start under a time split).
    """
    rng = np.random.default_rng(seed)
    visual = rng.integers(0, 2, n_items)
    audio = rng.integers(0, 2, n_items)
    published = np.where(rng.random(n_items) < 0.2, 920, rng.integers(0, 500, n_items))
    rows = []
    for u in range(n_users):
        like = rng.integers(0, 2)
        seen = rng.choice(n_items, per_user, replace=False)
        logit = np.where(visual[seen] == like, 2.5, -2.5)
        clicks = rng.random(per_user) < 1 / (1 + np.exp(-logit))
        when = published[seen] + rng.integers(0, 1000 - published[seen])
        rows += [f"u{u:03d},v{v:03d},{t},{int(c)}" for v, t, c in zip(seen, when, clicks)]
    (folder / "videos").mkdir(parents=True, exist_ok=True)
    (folder / "interactions.csv").write_text("user_id,video_id,timestamp,label\n" + "\n".join(rows) + "\n")
    man = [
        f"v{i:03d},v{i:03d}.mp4,x,{['cool', 'warm'][visual[i]]},{['noise', 'tone'][audio[i]] if i % 7 else ''},"
        f"{published[i]}"
        for i in range(n_items)
    ]
    (folder / "videos" / "manifest.csv").write_text(
        "video_id,path,label,visual,audio,published_at\n" + "\n".join(man) + "\n"
    )


def write_ml100k(folder: Path, seed: int = 0, n_users: int = 30, n_items: int = 40, per_user: int = 15) -> None:
    """A MovieLens-100K-shaped folder with random ratings."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    data = [
        f"{u}\t{i}\t{rng.integers(1, 6)}\t{880000000 + rng.integers(0, 10**6)}"
        for u in range(1, n_users + 1)
        for i in rng.choice(np.arange(1, n_items + 1), per_user, replace=False)
    ]
    (folder / "u.data").write_text("\n".join(data) + "\n")
    # MovieLens' own fixed split u1: a fifth of the ratings in u1.test, the rest in u1.base (as in the dataset)
    test = rng.random(len(data)) < 0.2
    (folder / "u1.base").write_text("\n".join(r for r, t in zip(data, test) if not t) + "\n")
    (folder / "u1.test").write_text("\n".join(r for r, t in zip(data, test) if t) + "\n")
    occupations = ["other", "writer", "student"]
    (folder / "u.user").write_text(
        "".join(f"{u}|{rng.integers(18, 70)}|{'MF'[u % 2]}|{occupations[u % 3]}|0{u}\n" for u in range(1, n_users + 1))
    )
    (folder / "u.item").write_text(
        "".join(
            f"{i}|Movie {i} (1990)|01-Jan-{1980 + i % 20}||http://x|{'|'.join(str(int(rng.random() < 0.2)) for _ in range(19))}\n"
            for i in range(1, n_items + 1)
        )
    )


# Side features of side_features_log, per kind: each field's vocabulary size differs from the others
# of its kind, so a field read with another's embedding table fails or scores differently.
SIDE_FEATURES = {
    "categorical": ("occupation", "gender", "region"),  # 7, 2 and 4 values (+ unknown)
    "multi": ("tags", "genres", "moods"),  # 9, 5 and 3 values
    "numeric": ("length", "age", "year"),
}


def side_features_log(seed: int = 0, n_users: int = 30, n_items: int = 40, n: int = 600):
    """A ``RawData`` (explicit labels) with every field of ``SIDE_FEATURES`` in the user or item table."""
    from pipeline.ctr.adapters import RawData

    rng = np.random.default_rng(seed)

    def pick(prefix: str, values: int, rows: int) -> list[str]:
        return [f"{prefix}{k}" for k in rng.integers(0, values, rows)]

    def lists(prefix: str, values: int, rows: int) -> list[list[str]]:
        return [[f"{prefix}{k}" for k in rng.choice(values, rng.integers(0, 3), replace=False)] for _ in range(rows)]

    users = pa.table(
        {
            "user_id": [f"u{k}" for k in range(n_users)],
            "occupation": pick("o", 7, n_users),
            "gender": pick("g", 2, n_users),
            "region": pick("r", 4, n_users),
            "age": rng.integers(18, 70, n_users).astype(float),
        }
    )
    items = pa.table(
        {
            "video_id": [f"v{k}" for k in range(n_items)],
            "tags": lists("t", 9, n_items),
            "genres": lists("g", 5, n_items),
            "moods": lists("m", 3, n_items),
            "length": rng.uniform(5, 60, n_items),
            "year": rng.integers(1990, 2024, n_items).astype(float),
        }
    )
    inter = pa.table(
        {
            "user_id": pick("u", n_users, n),
            "video_id": pick("v", n_items, n),
            "timestamp": rng.integers(0, 10_000, n),
            "label": rng.integers(0, 2, n),
        }
    )
    return RawData(inter, users, items)

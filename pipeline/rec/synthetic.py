"""The built-in top-K dataset: synthetic users and items in MMRec's layout, from a seed.

Users and items have latent factors; a user's interactions are drawn without replacement from
softmax(u·v / sqrt(f) * 3 + log popularity), the popularity a power law over a random item order.
Each modality's features are a noisy random projection of the item factors, so content predicts
taste but no single item's interactions do for an item nobody trained on. A fraction of items
(``cold_items``) is held out of training: their interactions are all in valid or test, which makes
the cold slice non-empty and lets only models that read content rank those items well.

Writes ``<out>/<name>.inter`` (``userID itemID rating timestamp x_label``, tab-separated) and
``<out>/{image,text,audio}_feat.npy`` (one per ``dims`` entry, row i = item i).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.core.params import RecSampleConfig
from pipeline.core.store import atomic_path

MODALITIES = ("image", "text", "audio")
EPOCH = 1_700_000_000
SHARPNESS = 3.0  # scale of the user-item affinity against log popularity


@dataclass(frozen=True)
class Synthetic:
    user: np.ndarray  # (N,) int64
    item: np.ndarray  # (N,) int64
    split: np.ndarray  # (N,) int8: 0 train, 1 valid, 2 test
    features: dict[str, np.ndarray]  # modality -> (n_items, D) float32
    cold: np.ndarray  # (n_items,) bool: held out of training


def generate(cfg: RecSampleConfig) -> Synthetic:
    rng = np.random.default_rng(cfg.seed)
    f, n_u, n_i = cfg.factors, cfg.n_users, cfg.n_items
    users, items = rng.standard_normal((n_u, f)), rng.standard_normal((n_i, f))
    log_pop = -cfg.popularity * np.log1p(rng.permutation(n_i)).astype(np.float64)
    counts = np.clip(rng.poisson(cfg.interactions_per_user, n_u), 5, n_i // 2)
    width = int(counts.max())
    rows, cols = [], []
    for start in range(0, n_u, 512):  # (chunk, n_items) logits: bounded memory
        logits = users[start : start + 512] @ items.T / np.sqrt(f) * SHARPNESS + log_pop
        gumbel = -np.log(-np.log(rng.uniform(1e-12, 1.0, logits.shape)))
        top = np.argpartition(-(logits + gumbel), width - 1, axis=1)[:, :width]  # a sample without replacement
        keep = np.arange(width) < counts[start : start + 512, None]
        rows.append(np.repeat(np.arange(start, start + len(top)), keep.sum(1)))
        cols.append(top[keep])
    user, item = np.concatenate(rows).astype(np.int64), np.concatenate(cols).astype(np.int64)
    cold = np.zeros(n_i, bool)
    cold[rng.choice(n_i, int(round(cfg.cold_items * n_i)), replace=False)] = True
    r = rng.uniform(size=len(user))
    split = np.where(r < 1 - cfg.valid - cfg.test, 0, np.where(r < 1 - cfg.test, 1, 2)).astype(np.int8)
    held = rng.uniform(size=len(user)) < cfg.valid / (cfg.valid + cfg.test)
    split[cold[item]] = np.where(held[cold[item]], 1, 2)  # cold items never in training
    # every user keeps a training interaction (a warm one when there is one), so none is unseen in training
    no_train = np.bincount(user[split == 0], minlength=n_u) == 0
    first_warm = _first_index(user, ~cold[item], n_u)
    fix = no_train & (first_warm >= 0)
    split[first_warm[fix]] = 0
    features = {}
    for name, dim in zip(MODALITIES, cfg.dims):
        proj = rng.standard_normal((f, dim)) / np.sqrt(f)
        x = items @ proj
        features[name] = (x + cfg.noise * x.std() * rng.standard_normal(x.shape)).astype(np.float32)
    order = np.lexsort((item, user))
    return Synthetic(user[order], item[order], split[order], features, cold)


def _first_index(user: np.ndarray, ok: np.ndarray, n_users: int) -> np.ndarray:
    """Per user, the index of its first row where ``ok``; -1 when none."""
    out = np.full(n_users, -1, np.int64)
    idx = np.flatnonzero(ok)[::-1]  # written last-to-first: the first index wins
    out[user[idx]] = idx
    return out


def write(data: Synthetic, folder: str | Path, name: str) -> list[Path]:
    """The MMRec layout: ``<name>.inter`` and one ``<modality>_feat.npy`` per modality."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    ts = EPOCH + 60 * np.arange(len(data.user))
    lines = [f"{u}\t{i}\t1\t{t}\t{s}" for u, i, t, s in zip(data.user, data.item, ts, data.split)]
    out = [folder / f"{name}.inter"]
    with atomic_path(out[0]) as tmp:
        tmp.write_text("userID\titemID\trating\ttimestamp\tx_label\n" + "\n".join(lines) + "\n", encoding="utf-8")
    for modality, x in data.features.items():
        out.append(folder / f"{modality}_feat.npy")
        with atomic_path(out[-1]) as tmp, open(tmp, "wb") as fh:
            np.save(fh, x)
    return out

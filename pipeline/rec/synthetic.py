"""The built-in top-K dataset: synthetic users and items in MMRec's layout, from a seed, in two profiles.

Both draw a user's interactions without replacement from softmax(sharpness * u·v / sqrt(f) + log
popularity), the popularity a power law over a random item order, and hold a fraction of items
(``cold_items``) out of training: their interactions are all in valid or test, so the cold slice is
non-empty and only models that read content can rank those items.

- ``easy`` (the original): dense, Poisson activity, and each modality a noisy random projection of
  the item factors, so content predicts taste almost as well as the interactions do.
- ``realistic``: shaped like a public micro-video dataset (LATTICE's, measured in issue 23): under
  0.2% dense, log-normal user activity (median train count about 2, mean several times that), a
  popularity head (top 10% of items hold about half the training interactions), and per-modality
  features in which only ``1 - nuisance`` of the dimensions follow taste at all, and those only with
  a share ``alignment`` of their variance; the rest is an item "style" shared across modalities
  (content similarity that says nothing about who clicks) and noise, with non-zero means, unequal
  per-dimension scales and float16 rounding. ``measure`` reports the properties the tests hold it to.

Writes ``<out>/<name>.inter`` (``userID itemID rating timestamp x_label``, tab-separated) and one
``<modality>_feat.npy`` per modality (row i = item i).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.core.store import atomic_path
from pipeline.rec.config import EasyProfile, RealisticProfile, RecSampleConfig

MODALITIES = ("image", "text", "audio")
EPOCH = 1_700_000_000
SHARPNESS = 3.0  # easy: scale of the user-item affinity against log popularity
TOP_K = 20


@dataclass(frozen=True)
class Synthetic:
    user: np.ndarray  # (N,) int64
    item: np.ndarray  # (N,) int64
    split: np.ndarray  # (N,) int8: 0 train, 1 valid, 2 test
    features: dict[str, np.ndarray]  # modality -> (n_items, D) float32
    cold: np.ndarray  # (n_items,) bool: held out of training


def generate(cfg: RecSampleConfig) -> Synthetic:
    """The dataset of ``cfg.profile`` from ``cfg.seed``."""
    return easy(cfg.easy, cfg.seed) if cfg.profile == "easy" else realistic(cfg.realistic, cfg.seed)


def easy(p: EasyProfile, seed: int) -> Synthetic:
    rng = np.random.default_rng(seed)
    f, n_u, n_i = p.factors, p.n_users, p.n_items
    users, items = rng.standard_normal((n_u, f)), rng.standard_normal((n_i, f))
    log_pop = -p.popularity * np.log1p(rng.permutation(n_i)).astype(np.float64)
    counts = np.clip(rng.poisson(p.interactions_per_user, n_u), 5, n_i // 2)
    user, item = _draw(rng, users, items, log_pop, counts, SHARPNESS)
    cold = np.zeros(n_i, bool)
    cold[rng.choice(n_i, int(round(p.cold_items * n_i)), replace=False)] = True
    split = _split(rng, user, item, cold, p)
    features = {}
    for name, dim in zip(MODALITIES, p.dims):
        proj = rng.standard_normal((f, dim)) / np.sqrt(f)
        x = items @ proj
        features[name] = (x + p.noise * x.std() * rng.standard_normal(x.shape)).astype(np.float32)
    order = np.lexsort((item, user))
    return Synthetic(user[order], item[order], split[order], features, cold)


def realistic(p: RealisticProfile, seed: int) -> Synthetic:
    rng = np.random.default_rng(seed)
    f, n_u, n_i = p.factors, p.n_users, p.n_items
    users, items = rng.standard_normal((n_u, f)), rng.standard_normal((n_i, f))
    log_pop = -p.popularity * np.log1p(rng.permutation(n_i)).astype(np.float64)
    mu = np.log(p.interactions_per_user) - p.activity_sigma**2 / 2  # the log-normal's mean is interactions_per_user
    counts = np.clip(np.rint(rng.lognormal(mu, p.activity_sigma, n_u)), 2, n_i // 4).astype(np.int64)
    user, item = _draw(rng, users, items, log_pop, counts, p.sharpness)
    # new items are the rarely clicked ones (a real dataset's cold items are the tail that happened to get no
    # training interaction), so the cold slice is a small share of the test interactions, as there
    clicks = np.bincount(item, minlength=n_i).astype(np.float64)
    weight = np.where(clicks > 0, 1.0 / np.maximum(clicks, 1.0) ** 2, 0.0)
    cold = np.zeros(n_i, bool)
    n_cold = min(int(round(p.cold_items * n_i)), int((clicks > 0).sum()))
    cold[rng.choice(n_i, n_cold, replace=False, p=weight / weight.sum())] = True
    split = _split(rng, user, item, cold, p)
    style = rng.standard_normal((n_i, p.style_rank))
    features = {m: _realistic_features(rng, items, style, dim, p) for m, dim in zip(p.modalities, p.dims)}
    order = np.lexsort((item, user))
    return Synthetic(user[order], item[order], split[order], features, cold)


def _draw(rng, users, items, log_pop, counts, sharpness: float) -> tuple[np.ndarray, np.ndarray]:
    """Per user ``counts[u]`` distinct items from softmax(sharpness * u·v / sqrt(f) + log_pop)."""
    n_u, f = users.shape
    width = int(counts.max())
    rows, cols = [], []
    for start in range(0, n_u, 512):  # (chunk, n_items) logits: bounded memory
        logits = users[start : start + 512] @ items.T / np.sqrt(f) * sharpness + log_pop
        gumbel = -np.log(-np.log(rng.uniform(1e-12, 1.0, logits.shape)))
        top = np.argpartition(-(logits + gumbel), width - 1, axis=1)[:, :width]  # a sample without replacement
        keep = np.arange(width) < counts[start : start + 512, None]
        rows.append(np.repeat(np.arange(start, start + len(top)), keep.sum(1)))
        cols.append(top[keep])
    return np.concatenate(rows).astype(np.int64), np.concatenate(cols).astype(np.int64)


def _split(rng, user, item, cold, p: EasyProfile | RealisticProfile) -> np.ndarray:
    """Per interaction 0/1/2 = train/valid/test, ``cold`` items never in train; every user keeps a training one."""
    n_u = p.n_users
    r = rng.uniform(size=len(user))
    split = np.where(r < 1 - p.valid - p.test, 0, np.where(r < 1 - p.test, 1, 2)).astype(np.int8)
    held = rng.uniform(size=len(user)) < p.valid / (p.valid + p.test)
    split[cold[item]] = np.where(held[cold[item]], 1, 2)  # cold items never in training
    # every user keeps a training interaction (a warm one when there is one), so none is unseen in training
    no_train = np.bincount(user[split == 0], minlength=n_u) == 0
    first_warm = _first_index(user, ~cold[item], n_u)
    fix = no_train & (first_warm >= 0)
    split[first_warm[fix]] = 0
    return split


def _realistic_features(rng, items, style, dim: int, p: RealisticProfile) -> np.ndarray:
    """One modality: taste dimensions (``alignment`` of their variance from the item factors, the rest
    style and noise), nuisance dimensions (style and noise only), shuffled; then per-dimension offsets
    and log-uniform scales, rounded to float16 as public datasets ship them."""
    n_i, f = items.shape
    n_taste = max(1, int(round(dim * (1 - p.nuisance))))
    taste = items @ rng.standard_normal((f, n_taste)) / np.sqrt(f)

    def other(n: int) -> np.ndarray:  # unit-variance style + noise
        look = style @ rng.standard_normal((p.style_rank, n)) / np.sqrt(p.style_rank)
        return np.sqrt(p.style) * look + np.sqrt(1 - p.style) * rng.standard_normal((n_i, n))

    x = np.concatenate(
        [np.sqrt(p.alignment) * taste + np.sqrt(1 - p.alignment) * other(n_taste), other(dim - n_taste)], axis=1
    )
    x = x[:, rng.permutation(dim)]
    lo, hi = p.scale_range
    scale = np.exp(rng.uniform(np.log(lo), np.log(hi), dim))
    offset = rng.standard_normal(dim) * scale
    return (x * scale + offset).astype(np.float16).astype(np.float32)


def _first_index(user: np.ndarray, ok: np.ndarray, n_users: int) -> np.ndarray:
    """Per user, the index of its first row where ``ok``; -1 when none."""
    out = np.full(n_users, -1, np.int64)
    idx = np.flatnonzero(ok)[::-1]  # written last-to-first: the first index wins
    out[user[idx]] = idx
    return out


def measure(data: Synthetic, *, max_items: int = 2000, seed: int = 0) -> dict[str, float]:
    """The properties a real dataset is compared on (issue 23's measurements of the LATTICE micro-video data):

    ``density``; training interactions per user (``train_per_user_median`` / ``_mean``); the share of
    training interactions on the top 10% of items (``top10_share``); ``cold_share`` of items;
    ``content_coclick_corr``, the correlation over item pairs (up to ``max_items`` warm items) of their
    feature cosine and their co-click cosine; and ``cold_profile_recall@20``: ranking only the cold items
    by the cosine of their features to the mean of the user's training items' features, Recall@20 of
    the test users' cold targets, against ``cold_random_recall@20`` (20 / cold items). Features are the
    modalities side by side, each dimension z-scored on the warm items (as ``rec_data`` does).
    """
    n_u, n_i = int(data.user.max()) + 1, len(data.cold)
    train = data.split == 0
    per_user = np.bincount(data.user[train], minlength=n_u)
    item_train = np.bincount(data.item[train], minlength=n_i)
    pop = np.sort(item_train)[::-1]
    warm = ~data.cold
    x = np.concatenate([v.astype(np.float64) for _, v in sorted(data.features.items())], axis=1)
    x = (x - x[warm].mean(0)) / np.maximum(x[warm].std(0), 1e-12)
    x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    rng = np.random.default_rng(seed)
    pick = np.flatnonzero(item_train > 0)
    pick = np.sort(rng.choice(pick, min(max_items, len(pick)), replace=False))
    clicks = np.zeros((n_u, len(pick)), np.float32)
    col = np.full(n_i, -1)
    col[pick] = np.arange(len(pick))
    sel = train & (col[data.item] >= 0)
    clicks[data.user[sel], col[data.item[sel]]] = 1.0
    co = clicks.T @ clicks
    deg = np.sqrt(np.diag(co))
    co = co / np.maximum(np.outer(deg, deg), 1e-12)
    upper = np.triu_indices(len(pick), 1)
    corr = float(np.corrcoef((x[pick] @ x[pick].T)[upper], co[upper])[0, 1])
    return {
        "density": len(data.user) / (n_u * n_i),
        "train_per_user_median": float(np.median(per_user)),
        "train_per_user_mean": float(per_user.mean()),
        "top10_share": float(pop[: max(1, n_i // 10)].sum() / max(pop.sum(), 1)),
        "cold_share": float(data.cold.mean()),
        "content_coclick_corr": corr,
        f"cold_profile_recall@{TOP_K}": _cold_profile_recall(data, x, n_u),
        f"cold_random_recall@{TOP_K}": min(1.0, TOP_K / max(int(data.cold.sum()), 1)),
    }


def _cold_profile_recall(data: Synthetic, x: np.ndarray, n_users: int) -> float:
    cold_items = np.flatnonzero(data.cold)
    test = (data.split == 2) & data.cold[data.item]
    users = np.unique(data.user[test])
    if not len(users) or not len(cold_items):
        return float("nan")
    train = data.split == 0
    profile = np.zeros((n_users, x.shape[1]))
    np.add.at(profile, data.user[train], x[data.item[train]])
    top = np.argsort(-(profile[users] @ x[cold_items].T), axis=1)[:, :TOP_K]  # (U, K) positions in cold_items
    hit = np.zeros((len(users), len(cold_items)), bool)
    hit[np.repeat(np.arange(len(users)), TOP_K), top.ravel()] = True
    row = np.searchsorted(users, data.user[test])
    target = np.searchsorted(cold_items, data.item[test])
    hits = np.bincount(row, weights=hit[row, target], minlength=len(users))
    totals = np.bincount(row, minlength=len(users))
    return float(np.mean(hits / totals))


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

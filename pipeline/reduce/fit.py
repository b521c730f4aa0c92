"""PCA + normalisation of one modality, fitted on training rows only, saved without pickles.

A ``ModalityState`` holds plain arrays (``mean``, ``components``, ``explained_variance``,
``shift``, ``scale``) and applies ``norm(((X - mean) @ components.T) / sqrt(var if whiten))`` --
exactly scikit-learn's ``PCA.transform`` followed by min-max or z-score scaling. States are
saved as ``<name>.npz`` plus one ``state.json`` (format version, settings, dims), readable
with numpy alone and stable across scikit-learn versions.

``python -m pipeline.reduce apply --state DIR --out items.parquet [--store NAME=PATH ...]``
transforms new videos with a saved state, without refitting.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipeline.core import store
from pipeline.core.modality import FeaturesConfig, ModalityReduceConfig

log = logging.getLogger(__name__)
STATE_VERSION = 1
STATE_JSON = "state.json"


class ReduceError(ValueError):
    """Params that cannot be honoured for this data (named key in the message)."""


@dataclass(frozen=True)
class ModalityState:
    name: str
    mean: np.ndarray  # (D,)
    components: np.ndarray  # (K, D); K = D and identity when PCA is off
    explained_variance: np.ndarray  # (K,)
    explained_variance_ratio: np.ndarray  # (K,)
    whiten: bool
    shift: np.ndarray  # (K,) subtracted after projection
    scale: np.ndarray  # (K,) divided by after the shift, never 0
    info: dict = field(default_factory=dict)  # settings and counts, for state.json and metrics

    def transform(self, x: np.ndarray) -> np.ndarray:
        y = (np.asarray(x, np.float64) - self.mean) @ self.components.T  # (N, K)
        if self.whiten:
            y = y / np.sqrt(np.where(self.explained_variance > 0, self.explained_variance, 1.0))
        return ((y - self.shift) / self.scale).astype(np.float32)


def choose_solver(solver: str, n: int, d: int, max_fit_mb: int) -> str:
    if solver != "auto":
        return solver
    return "full" if n * d * 8 / 2**20 <= max_fit_mb else "incremental"


def _capped(target: int | float | None, limit: int, why: str, name: str, cap: bool) -> bool:
    """Whether ``n_components`` (``target``) is above ``limit``: an error, or logged and True with ``cap``.

    The one place that decides, logs and reports a cap, so the log and ``capped`` in the metrics agree.
    """
    if not isinstance(target, int) or target <= limit:
        return False
    if not cap:
        raise ReduceError(
            f"reduce.{name}.n_components={target} exceeds {why}; lower it, or set reduce.too_many_components: cap"
        )
    log.warning("reduce.%s.n_components=%d capped to %d = %s", name, target, limit, why)
    return True


def fit_projection(
    x: np.ndarray,
    cfg: ModalityReduceConfig,
    name: str,
    *,
    solver: str,
    cap: bool,
    seed: int,
    max_fit_mb: int,
    batch_rows: int,
) -> tuple[np.ndarray, ...]:
    """(mean, components, explained_variance, ratio, full cumulative curve, info) for training rows ``x``."""
    n, d = x.shape
    if cfg.n_components is None:
        eye = np.eye(d)
        var = x.var(axis=0, dtype=np.float64)
        total = var.sum()
        info = {"pca": False, "capped": False}
        return x.mean(axis=0), eye, var, var / total if total > 0 else np.zeros(d), None, info
    # n centred rows span at most n - 1 directions: a further component has no training variance,
    # and z-scoring it would blow noise up by orders of magnitude on the other splits.
    limit = min(n - 1, d)
    target = cfg.n_components
    capped = _capped(target, limit, f"min(training rows - 1={n - 1}, dims={d})", name, cap)
    chosen = choose_solver(solver, n, d, max_fit_mb)
    if isinstance(target, float) and chosen != "full":
        raise ReduceError(
            f"reduce.{name}.n_components={target} is a variance target, which needs the full "
            f"solver (got {chosen!r}); give an integer or set reduce.solver: full"
        )
    if x.var(axis=0, dtype=np.float64).sum() == 0:  # every training row identical (e.g. all silent): nothing to project
        k = limit if isinstance(target, float) else min(target, limit)
        zeros = np.zeros(k)
        info = {"pca": True, "constant": True, "capped": capped}
        return x.mean(axis=0), np.zeros((k, d)), zeros, zeros, np.zeros(limit), info
    # imported here: sklearn.decomposition costs ~3 s of CPU, and ctr_train, rec_train and classify import
    # this module for its state reader without ever fitting
    from sklearn.decomposition import PCA, IncrementalPCA

    if chosen == "full":  # small enough for float64 and the whole spectrum (for the variance curve)
        pca = PCA(n_components=limit, svd_solver="full").fit(np.asarray(x, np.float64))
    elif chosen == "randomized":
        pca = PCA(n_components=min(target, limit), svd_solver="randomized", random_state=seed).fit(x)
    else:
        k = min(target, limit)
        pca = IncrementalPCA(n_components=k, batch_size=max(batch_rows, k)).fit(x)
    curve = np.cumsum(pca.explained_variance_ratio_)
    k = int(np.searchsorted(curve, target - 1e-12) + 1) if isinstance(target, float) else min(target, limit)
    k = min(k, len(curve))
    info = {"pca": True, "solver": chosen, "capped": capped}
    return (pca.mean_, pca.components_[:k], pca.explained_variance_[:k], pca.explained_variance_ratio_[:k], curve, info)


def fit_modality(
    x_train: np.ndarray, cfg: ModalityReduceConfig, name: str, *, cap: bool, **kw
) -> tuple[ModalityState, np.ndarray | None]:
    """Fit PCA then the normaliser on training rows; returns the state and the cumulative variance curve."""
    if x_train.shape[0] < 2:  # e.g. every training video silent: the modality carries nothing
        log.warning("reduce.%s: %d training rows with this signal; its vectors are all zero", name, x_train.shape[0])
        # Nothing to fit, so the rows cannot limit K; keep min(n_components, dims) zero columns (a
        # zero-width vector would break the readers), capped to dims like any other fit.
        d = x_train.shape[1]
        target = cfg.n_components
        capped = _capped(target, d, f"dims={d} (fewer than 2 training rows: nothing fitted)", name, cap)
        k = d if target is None else min(target, d) if isinstance(target, int) else 1
        zeros = np.zeros(k)
        mean, comps, var, ratio, curve, info = (
            np.zeros(d),
            np.zeros((k, d)),
            zeros,
            zeros,
            None,
            {"pca": target is not None, "constant": True, "capped": capped},
        )
    else:
        mean, comps, var, ratio, curve, info = fit_projection(x_train, cfg, name, cap=cap, **kw)
    partial = ModalityState(
        name, mean, comps, var, ratio, cfg.whiten and info["pca"], np.zeros(len(comps)), np.ones(len(comps))
    )
    y = partial.transform(x_train).astype(np.float64)  # (N, K)
    if len(y) == 0:
        shift, span = np.zeros(y.shape[1]), np.ones(y.shape[1])
    elif cfg.norm == "minmax":
        shift, span = y.min(axis=0), y.max(axis=0) - y.min(axis=0)
    elif cfg.norm == "zscore":
        shift, span = y.mean(axis=0), y.std(axis=0)
    else:
        shift, span = np.zeros(y.shape[1]), np.ones(y.shape[1])
    # constant columns (also numerically constant ones) map to 0, never NaN or huge values
    scale = np.where(span > 1e-12 + 1e-9 * np.abs(span).max(initial=0.0), span, 1.0)
    info |= {
        "input_dim": int(x_train.shape[1]),
        "n_components": int(len(comps)),
        "n_train": int(x_train.shape[0]),
        "explained_variance": float(ratio.sum()) if info["pca"] else 1.0,
        "whiten": partial.whiten,
        "norm": cfg.norm,
    }
    state = ModalityState(name, mean, comps, var, ratio, partial.whiten, shift, scale, info)
    return state, curve


def fit_precomputed(
    features: Mapping[str, np.ndarray],
    train_rows: np.ndarray,
    cfg: FeaturesConfig,
    seed: int,
    present: Mapping[str, np.ndarray] | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, ModalityState]]:
    """A dataset's own per-item features (``*_feat.npy``) through ``reduce``'s PCA + normaliser, fitted on
    ``train_rows`` (bool per item row: items with a training interaction, so nothing of a valid/test-only
    item leaks into the fit) and applied to every item; masked rows (``present`` false) are neither fitted
    on nor given a value (zeros). The top-K and CTR data stages share it (``rec_data.features``,
    ``ctr_data.content``)."""
    out, states = {}, {}
    for name, x in features.items():
        keep = np.ones(len(x), bool) if present is None or name not in present else present[name]
        state, _ = fit_modality(
            x[train_rows & keep],
            ModalityReduceConfig(True, None, cfg.n_components, cfg.whiten, cfg.norm),
            name,
            cap=True,
            solver="auto",
            seed=seed,
            max_fit_mb=2048,
            batch_rows=4096,
        )
        states[name] = state
        out[name] = np.where(keep[:, None], state.transform(x), 0.0).astype(np.float32)
    return out, states


def save_states(folder: str | Path, states: dict[str, ModalityState], extra: dict) -> None:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, st in states.items():
        with store.atomic_path(folder / f"{name}.npz") as tmp, open(tmp, "wb") as fh:
            np.savez(
                fh,
                mean=st.mean,
                components=st.components,
                explained_variance=st.explained_variance,
                explained_variance_ratio=st.explained_variance_ratio,
                shift=st.shift,
                scale=st.scale,
            )
    doc = {
        "version": STATE_VERSION,
        **extra,
        "modalities": {n: {**st.info, "whiten": st.whiten} for n, st in states.items()},
    }
    store.write_text(folder / STATE_JSON, json.dumps(store.plain(doc), indent=2, sort_keys=True))


def load_states(folder: str | Path) -> tuple[dict[str, ModalityState], dict]:
    folder = Path(folder)
    if not (folder / STATE_JSON).exists():
        raise store.StoreError(f"{folder}: no {STATE_JSON}; run the reduce stage first")
    doc = json.loads((folder / STATE_JSON).read_text())
    if doc.get("version") != STATE_VERSION:
        raise store.StoreError(f"{folder}: state version {doc.get('version')} is not {STATE_VERSION}")
    states = {}
    for name, info in doc["modalities"].items():
        with np.load(folder / f"{name}.npz") as z:
            states[name] = ModalityState(
                name,
                z["mean"],
                z["components"],
                z["explained_variance"],
                z["explained_variance_ratio"],
                bool(info["whiten"]),
                z["shift"],
                z["scale"],
                info,
            )
    return states, doc

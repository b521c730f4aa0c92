"""``lattice``: the LATTICE / DiffMM family's layout, a folder holding

- ``trnMat.pkl``, ``valMat.pkl``, ``tstMat.pkl``: pickled SciPy sparse matrices (users x items, any
  sparse format), one per split; every stored non-zero is one interaction. All three have one shape;
- ``<modality>_feat.npy`` (``image_feat.npy``, ``text_feat.npy``, ``audio_feat.npy``, ...): float
  arrays (n_items, D), row i = item (column) i.

No timestamps, no ratings. The pickles are unpickled: read only datasets you trust (as their own code does).
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import scipy.sparse as sp

from pipeline.datasets import RawData, SourceError, feature_files, interactions, need, register

if TYPE_CHECKING:
    from pipeline.datasets import LabelRule

FILES = ["trnMat.pkl", "valMat.pkl", "tstMat.pkl"]  # train, valid, test


@register("lattice")
def read_lattice(path: Path, rule: LabelRule) -> RawData:
    need(path, FILES, "lattice")
    mats = [_load(path / name) for name in FILES]
    shapes = {name: m.shape for name, m in zip(FILES, mats)}
    if len(set(shapes.values())) != 1:
        raise SourceError(f"{path}: the split matrices differ in shape {shapes}; all must be users x items")
    n_users, n_items = mats[0].shape
    users, items, splits = [], [], []
    for k, m in enumerate(mats):
        coo = m.tocoo()
        nz = coo.data != 0
        users.append(coo.row[nz])
        items.append(coo.col[nz])
        splits.append(np.full(int(nz.sum()), k, np.int8))
    features = feature_files(path, n_items, f"{FILES[0]} ({n_items} item columns)")
    ids = pa.table({"video_id": pa.array([str(k) for k in range(n_items)])})
    u, i, s = (np.concatenate(x) for x in (users, items, splits))
    order = np.lexsort((i, u, s))  # a stable row order whatever the sparse format
    table = interactions(
        pa.array(u[order].astype(np.int64)), pa.array(i[order].astype(np.int64)), split=pa.array(s[order])
    )
    return RawData(table, pa.table({"user_id": pa.array([str(k) for k in range(n_users)])}), ids, features)


def _load(path: Path) -> sp.spmatrix:
    try:
        with path.open("rb") as fh:
            m = pickle.load(fh)  # noqa: S301 - the format is a pickle; see the module docstring
    except (pickle.UnpicklingError, EOFError, AttributeError, ModuleNotFoundError, ValueError) as err:
        raise SourceError(f"{path}: not a pickled SciPy sparse matrix ({type(err).__name__}: {err})") from err
    if not sp.issparse(m) or m.ndim != 2:
        raise SourceError(f"{path}: holds a {type(m).__name__}, expected a SciPy sparse users x items matrix")
    return m

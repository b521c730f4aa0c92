"""params.yaml survives the edits ``dvc exp run -S`` makes to it: every list-valued key set to a list and
back to ``[]`` leaves a file that parses with every other key unchanged.

Why: DVC rewrites params.yaml with ruamel.yaml, which loses the line break after a list that was written
in block style (``key:`` then ``- item`` lines) when it is set to ``[]`` while a comment follows it on
its line. The next key then joins that line (``rank: 4 dropout: ...``) and the file no longer parses, so
``-S 'rec.content=[image]'`` then ``-S 'rec.content=[]'`` corrupted a user's params. The comments of
list-valued keys therefore sit on the line above the key.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

PARAMS = Path(__file__).resolve().parents[2] / "params.yaml"


def list_keys(node, where: str = "") -> list[tuple[str, list]]:
    """Every ``a.b.c`` whose value is a list, with that value."""
    if isinstance(node, dict):
        return [kv for k, v in node.items() for kv in list_keys(v, f"{where}.{k}" if where else str(k))]
    return [(where, node)] if isinstance(node, list) else []


def without(tree: dict, key: str) -> dict:
    out = json.loads(json.dumps(tree))
    *parents, last = key.split(".")
    node = out
    for part in parents:
        node = node[part]
    del node[last]
    return out


KEYS = list_keys(yaml.safe_load(PARAMS.read_text())) + [("rec.mlp", [64, 32])]  # null in the file, a list in sweeps


def test_the_file_has_list_valued_keys():
    names = [k for k, _ in KEYS]
    assert {"rec.content", "rec_sample.realistic.dims", "visual.extractors"} <= set(names)


@pytest.mark.parametrize("key,value", KEYS, ids=[k for k, _ in KEYS])
def test_a_list_set_and_emptied_by_exp_run_keeps_the_file_valid(tmp_path, key, value):
    from dvc.utils.hydra import apply_overrides

    path = tmp_path / "params.yaml"
    shutil.copy(PARAMS, path)
    before = yaml.safe_load(path.read_text())
    some = value[:1] or [1]  # a one-item list: written in block style
    for override in (f"{key}={json.dumps(some)}", f"{key}=[]", f"{key}={json.dumps(value)}"):
        apply_overrides(str(path), [override])
        after = yaml.safe_load(path.read_text())  # raises on a corrupted file
        assert without(after, key) == without(before, key), override
    assert dict(list_keys(after))[key] == value

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

import pytest
import yaml

from pipeline.core.config import ConfigError, build, flat_keys
from pipeline.core.params import load_params
from tests.conftest import ROOT


@dataclass(frozen=True)
class Inner:
    size: int
    mode: Literal["a", "b"]


@dataclass(frozen=True)
class Outer:
    inner: Inner
    rate: float
    names: tuple[str, ...]
    pair: tuple[int, int]
    maybe: str | None
    flag: bool = False


GOOD = {"inner": {"size": 3, "mode": "a"}, "rate": 1, "names": ["x", "y"], "pair": [1, 2], "maybe": None}


def test_build_coerces_nested_values():
    cfg = build(Outer, GOOD)
    assert cfg == Outer(Inner(3, "a"), 1.0, ("x", "y"), (1, 2), None, False)
    assert isinstance(cfg.rate, float)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.rate = 2.0  # type: ignore[misc]


@pytest.mark.parametrize(
    "patch, message",
    [
        ({"inner": {"size": 3, "mode": "a", "sise": 1}}, "unknown params key 'inner.sise'"),
        ({"ratee": 1}, "did you mean 'rate'"),
        ({"inner": {"size": 3}}, "missing params key 'inner.mode'"),
        ({"inner": {"size": 3, "mode": "c"}}, "'inner.mode' must be one of ['a', 'b']"),
        ({"inner": {"size": True, "mode": "a"}}, "'inner.size' must be an integer"),
        ({"rate": "fast"}, "'rate' must be a number"),
        ({"pair": [1, 2, 3]}, "'pair' must have 2 items"),
        ({"names": "x"}, "'names' must be a list"),
        ({"flag": "yes"}, "'flag' must be true or false"),
    ],
)
def test_build_rejects_bad_params_naming_the_key(patch, message):
    with pytest.raises(ConfigError) as err:
        build(Outer, {**GOOD, **patch})
    assert message in str(err.value)


def test_repo_params_file_loads_and_every_key_is_known(params):
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert sorted(flat_keys(params)) == sorted(_leaf_keys(raw))
    assert params.decode.num_frames == raw["decode"]["num_frames"]


def test_unknown_key_in_params_file_is_an_error(tmp_path):
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["decode"]["num_frame"] = 16
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(
        ConfigError, match=r"unknown params key 'decode.num_frame' \(did you mean 'decode.num_frames'\?\)"
    ):
        load_params(path)


def test_range_checks_name_the_section(tmp_path):
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["ingest"]["split"]["train"] = 1.5
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match="ingest.split"):
        load_params(path)


def test_default_input_is_the_sample_stage_output(params):
    # data.input's default repeats a path of the sample stage: keep the two in step.
    assert params.data.input.startswith(params.paths.sample.rstrip("/") + "/")
    assert params.data.interactions.startswith(params.paths.sample.rstrip("/") + "/")


def _leaf_keys(raw: dict, where: str = "") -> list[str]:
    keys = []
    for key, value in raw.items():
        full = f"{where}.{key}" if where else key
        keys += _leaf_keys(value, full) if isinstance(value, dict) else [full]
    return keys

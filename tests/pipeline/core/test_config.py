from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Literal

import pytest
import yaml

from pipeline.core.config import ConfigError, build, flat_keys
from pipeline.params import load_params
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


def _load_with(tmp_path, **changes):
    """load_params on a copy of the repo's params.yaml with ``changes`` (dotted keys) applied."""
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    for dotted, value in changes.items():
        *parents, last = dotted.split(".")
        node = raw
        for key in parents:
            node = node[key]
        node[last] = value
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    return load_params(path)


NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize(
    "key, value",
    [
        *[("ctr.lr", v) for v in (-1, 0, NAN, INF)],
        ("ctr.weight_decay", -0.1),
        ("ctr.weight_decay", NAN),
        ("ctr.dropout", 1.0),
        ("ctr.dropout", -0.1),
        *[(f"ctr.{k}", 0) for k in ("embed_dim", "heads", "attention_dim", "batch_size", "epochs", "patience")],
        ("ctr.heads", 3),  # does not divide embed_dim 16
        ("ctr.mlp", [64, 0]),
        ("ctr.seed", -1),
        ("ctr.threads", -1),
        *[("classify.lr", v) for v in (-1, 0, NAN)],
        ("classify.backbone_lr", -0.001),
        ("classify.weight_decay", -1),
        ("classify.dropout", 1.0),
        *[(f"classify.{k}", 0) for k in ("hidden", "clusters", "batch_size", "epochs", "patience")],
        ("classify.seed", -1),
        ("classify.threads", -1),
        ("classify.shared_private.similarity_weight", -1),
        ("classify.shared_private.difference_margin", NAN),
        ("ctr_data.features.categorical", ["gender", "gender"]),
        *[("rec.profile_weight", v) for v in (-0.5, NAN, INF)],
    ],
)
def test_training_params_out_of_range_are_errors_naming_the_key(tmp_path, key, value):
    with pytest.raises(ConfigError) as err:
        _load_with(tmp_path, **{key: value})
    message = str(err.value)
    assert f"params key '{key}'" in message and "\n" not in message, message


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("decode.num_frames", -3, "params key 'decode.num_frames' must be >= 1, got -3"),
        ("decode.size", 4, "params key 'decode.size' must be >= 8, got 4"),
        ("decode.workers", -1, "params key 'decode.workers' must be >= 0 (0 = one per core), got -1"),
        (
            "reduce.resnet152.n_components",
            "abc",
            "params key 'reduce.resnet152.n_components' must be an integer, a number or null, got 'abc'",
        ),
        ("reduce.resnet152.n_components", 1.5, "params key 'reduce.resnet152.n_components' as a float is the variance"),
        ("audio.hop_ms", 0, "params key 'audio.hop_ms' must be in (0, window_ms = "),
        ("executor.actors", -2, "params key 'executor.actors' must be >= 0 (0 = auto), got -2"),
        ("ingest.max_failure_rate", 2, "params key 'ingest.max_failure_rate' must be a share in [0, 1], got 2"),
        ("sample.n_videos", 3, "params key 'sample.n_videos' must be >= 4 (one per category), got 3"),
        ("ctr_data.history", 0, "params key 'ctr_data.history' must be >= 1, got 0"),
    ],
)
def test_a_bad_value_names_its_key_the_value_and_what_is_allowed(tmp_path, key, value, message):
    """Issue 26: one line naming the key, the value and the allowed range in words (not a list of every
    key's bound, not Python type reprs)."""
    with pytest.raises(ConfigError) as err:
        _load_with(tmp_path, **{key: value})
    assert str(err.value).startswith(message) and "<class" not in str(err.value), str(err.value)


def test_training_params_at_their_bounds_load(tmp_path):
    params = _load_with(
        tmp_path,
        **{"ctr.dropout": 0.0, "ctr.weight_decay": 0.0, "ctr.threads": 0, "ctr.mlp": [], "classify.weight_decay": 0},
    )
    assert (params.ctr.dropout, params.ctr.weight_decay, params.ctr.mlp) == (0.0, 0.0, ())


@pytest.mark.parametrize(
    "changes, named",
    [
        ({"visual.resnet152.num_frames": 64}, "visual.resnet152.num_frames (64) exceeds decode.num_frames (32)"),
        ({"visual.i3d.num_frames": 33}, "visual.i3d.num_frames (33) exceeds decode.num_frames (32)"),
        ({"decode.num_frames": 4}, "visual.resnet152.num_frames (8) exceeds decode.num_frames (4)"),
        (  # an extractor that does not run is not checked, unless classify fine-tunes it
            {"visual.extractors": ["resnet152"], "visual.i3d.num_frames": 64, "classify.backbone": "i3d"},
            "visual.i3d.num_frames (64) exceeds decode.num_frames (32)",
        ),
    ],
)
def test_visual_frames_beyond_the_decoded_ones_are_an_error_naming_both_keys(tmp_path, changes, named):
    with pytest.raises(ConfigError, match=re.escape(named)):
        _load_with(tmp_path, **changes)


def test_visual_frames_up_to_the_decoded_ones_load(tmp_path):
    params = _load_with(
        tmp_path,
        **{"visual.resnet152.num_frames": 0, "visual.i3d.num_frames": 32},  # 0 = every decoded frame
    )
    assert (params.visual.sections["resnet152"].num_frames, params.visual.sections["i3d"].num_frames) == (0, 32)
    unused = _load_with(tmp_path, **{"visual.extractors": ["resnet152"], "visual.i3d.num_frames": 64})
    assert "i3d" not in unused.visual.extractors
    assert "visual.i3d.num_frames (64) exceeds" in unused.frames_problem("i3d")  # a run by hand is refused


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


def test_joint_features_need_their_inputs_computed(tmp_path):
    with pytest.raises(ConfigError, match=r"joint.scene_action reads scene_probs \(scene\): add scene to visual"):
        _load_with(tmp_path, **{"joint.features": ["scene_action"]})
    with pytest.raises(ConfigError, match=r"set visual.i3d.probs: true"):
        _load_with(
            tmp_path,
            **{"joint.features": ["scene_action"], "visual.extractors": ["scene", "i3d"], "visual.i3d.probs": False},
        )
    ok = _load_with(tmp_path, **{"joint.features": ["scene_action"], "visual.extractors": ["scene", "i3d"]})
    assert ok.joint.features == ("scene_action",)
    with pytest.raises(ConfigError, match=r"unknown joint feature 'scene_actoin'.*did you mean 'scene_action'"):
        _load_with(tmp_path, **{"joint.features": ["scene_actoin"]})


def test_flow_extractor_frames_count_the_flow_store(tmp_path):
    # the flow store holds decode.num_frames - 1 frames: 32 decoded -> at most 31 for i3d_flow
    ok = _load_with(tmp_path, **{"visual.extractors": ["i3d_flow"], "visual.i3d_flow.num_frames": 31})
    assert ok.frames_problem("i3d_flow") is None
    with pytest.raises(ConfigError, match=r"visual.i3d_flow.num_frames \(32\) exceeds the flow store's 31 frames"):
        _load_with(tmp_path, **{"visual.extractors": ["i3d_flow"], "visual.i3d_flow.num_frames": 32})

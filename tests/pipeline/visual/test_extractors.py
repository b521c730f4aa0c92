"""Contract tests, parametrised over the registry: every extractor, tiny inputs, random weights."""

from __future__ import annotations

import functools
import warnings

import numpy as np
import pytest
import torch

from pipeline.visual import extractor as registry  # create, EXTRACTORS
from pipeline.visual import weights
from pipeline.visual.inference import Engine, Placement, bf16_native
from tests.pipeline.visual.helpers import random_frames, visual_config

warnings.filterwarnings("ignore", category=FutureWarning)

# one xdist worker for the module: ``loaded`` builds each extractor's model once (C3D, VGG16: seconds each)
pytestmark = pytest.mark.xdist_group("extractors")

T, S = 8, 32  # tiny clips: ResNet and I3D pool globally (any size >= 32); C3D resizes to 112 itself
EXPECTED = {
    "resnet152": {"resnet152_pool": [2048]},
    "c3d": {"c3d_fc6": [4096]},
    "i3d": {"i3d_pool": [2048], "i3d_probs": [400]},
    "scene": {"scene_pool": [4096], "scene_probs": [365]},
    "i3d_flow": {"i3d_flow_pool": [2048]},
}
FP32 = Placement(torch.device("cpu"), "fp32", torch.get_num_threads())
BF16 = Placement(torch.device("cpu"), "bf16", torch.get_num_threads())
NAMES = registry.EXTRACTORS.names()


def frames(n: int = 2, channels: int = 3) -> np.ndarray:
    return np.stack([random_frames(i, T, S)[..., :channels] for i in range(n)])  # (B, T, S, S, C)


def rel(a: np.ndarray, b: np.ndarray) -> float:
    """Largest per-video relative L2 difference of ``a`` against reference ``b``."""
    return float(np.max(np.linalg.norm(a - b, axis=1) / np.linalg.norm(b, axis=1)))


def fresh(name: str, **changes):
    ex = registry.create(name, visual_config(**changes), T)
    return ex, weights.load(ex, "random")


@functools.cache
def loaded(name: str):
    # the contract's columns whatever params.yaml says; keep_sequence has its own tests below
    return fresh(name, resnet152={"keep_sequence": False})


@functools.cache
def reference(name: str) -> dict[str, np.ndarray]:
    ex, lw = loaded(name)
    return Engine(ex, lw.model, FP32)(frames(channels=ex.channels))


def test_registry_lists_the_extractors():
    assert NAMES == ["c3d", "i3d", "i3d_flow", "resnet152", "scene"]


@pytest.mark.parametrize("name", NAMES)
def test_dims_dtypes_and_finite(name):
    ex, lw = loaded(name)
    assert ex.dims() == EXPECTED[name]
    out = reference(name)
    assert set(out) == set(EXPECTED[name])
    for col, shape in EXPECTED[name].items():
        assert out[col].shape == (2, shape[0]) and out[col].dtype == np.float32
        assert np.isfinite(out[col]).all() and np.abs(out[col]).sum() > 0
        assert rel(out[col][:1], out[col][1:]) > 1e-3  # different videos, different features
    assert lw.weights == "random" and "NOT pretrained" in lw.detail


@pytest.mark.parametrize("name", NAMES)
def test_same_features_whatever_the_batch_size(name):
    ex, lw = loaded(name)
    engine = Engine(ex, lw.model, FP32)
    clips = frames(channels=ex.channels)
    singles = {k: np.concatenate([engine(clips[i : i + 1])[k] for i in range(2)]) for k in EXPECTED[name]}
    for col, ref in reference(name).items():
        assert rel(singles[col], ref) < 1e-4


@pytest.mark.parametrize("name", NAMES)
def test_fast_path_matches_the_naive_fp32_path(name):
    ex, lw = loaded(name)
    naive = Engine(ex, lw.model, FP32, naive=True)(frames(channels=ex.channels))
    for col, ref in reference(name).items():
        assert rel(naive[col], ref) < 1e-4


@pytest.mark.parametrize("name", NAMES)
def test_bf16_close_to_fp32(name):
    if name != "resnet152" and not bf16_native(torch.device("cpu")):
        pytest.skip(
            f"bf16 is emulated on this CPU (no AVX-512-BF16 or AMX; precision auto never picks it here): "
            f"{name} takes minutes at bf16; resnet152 still checks the bf16 path"
        )
    ex, lw = loaded(name)
    out = Engine(ex, lw.model, BF16)(frames(channels=ex.channels))
    for col, ref in reference(name).items():
        assert rel(out[col], ref) < 0.03


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_across_loads(name):
    ex = registry.create(name, visual_config(), T)
    again = Engine(ex, weights.load(ex, "random").model, FP32)(frames(channels=ex.channels))
    for col, ref in reference(name).items():
        np.testing.assert_allclose(again[col], ref, rtol=1e-5, atol=1e-6 * np.abs(ref).max())


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_round_trip(name, tmp_path):
    ex, _ = loaded(name)
    torch.manual_seed(123)  # weights different from the seeded `random` ones
    model = ex.build().eval()
    path = tmp_path / f"{name}.pt"
    torch.save({"state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}}, path)  # DataParallel style
    lw = weights.load(ex, str(path))
    assert lw.weights == f"file:{path}" and "sha256" in lw.detail
    got = Engine(ex, lw.model, FP32)(frames(channels=ex.channels))
    want = Engine(ex, model, FP32)(frames(channels=ex.channels))
    for col, ref in reference(name).items():
        np.testing.assert_allclose(got[col], want[col], rtol=1e-5, atol=1e-6 * np.abs(want[col]).max())
        assert rel(got[col], ref) > 1e-2  # really the file's weights, not the random ones


@pytest.mark.parametrize("name", NAMES)
def test_bad_weights_errors_name_the_params_key(name, tmp_path):
    ex, _ = loaded(name)
    key = f"visual.{name}.weights"
    with pytest.raises(weights.WeightsError, match=key):
        weights.load(ex, str(tmp_path / "missing.pt"))
    with pytest.raises(weights.WeightsError, match=key):
        weights.load(ex, "no-such-source")
    wrong = tmp_path / "wrong.pt"
    torch.save({"fc.weight": torch.zeros(3, 3)}, wrong)
    with pytest.raises(weights.WeightsError, match=f"{key}.*does not fit"):
        weights.load(ex, str(wrong))


def test_a_bad_weights_source_fails_before_the_model_is_built(monkeypatch, tmp_path):
    """A typo in visual.<name>.weights costs no model build (VGG16's random init alone takes seconds)."""
    ex, _ = loaded("scene")
    monkeypatch.setattr(type(ex), "build", lambda self: pytest.fail("built the model for a bad weights source"))
    for spec in (str(tmp_path / "missing.pt"), "no-such-source", "places365"):
        with pytest.raises(weights.WeightsError, match="visual.scene.weights"):
            weights.load(ex, spec)


def test_a_weights_file_skips_the_random_init_and_keeps_the_models_dtype(monkeypatch, tmp_path):
    """The file's weights replace every tensor: the model is built on the meta device (no init), and a
    half-precision file still gives a float32 model (assigned tensors are cast to the model's dtype)."""
    ex, lw = loaded("resnet152")
    path = tmp_path / "half.pt"
    torch.save({k: v.half() if v.is_floating_point() else v for k, v in lw.model.state_dict().items()}, path)
    built_on, build = [], type(ex).build
    monkeypatch.setattr(type(ex), "build", lambda self: built_on.append(torch.empty(0).device.type) or build(self))
    got = weights.load(ex, str(path))
    assert built_on == ["meta"]
    tensors = list(got.model.parameters()) + list(got.model.buffers())
    assert not any(t.is_meta for t in tensors) and {p.dtype for p in got.model.parameters()} == {torch.float32}
    out = Engine(ex, got.model, FP32)(frames())
    assert rel(out["resnet152_pool"], reference("resnet152")["resnet152_pool"]) < 1e-2  # fp16 rounding only


def test_a_model_with_tensors_no_state_dict_carries_is_initialised_then_loaded(monkeypatch, tmp_path):
    class Scaled(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(2, 2)
            self.register_buffer("scale", torch.full((2,), 3.0), persistent=False)  # not in a state dict

    ex, _ = loaded("resnet152")
    monkeypatch.setattr(type(ex), "build", lambda self: Scaled())
    saved = Scaled().state_dict()
    torch.save(saved, tmp_path / "scaled.pt")
    model = weights.load(ex, str(tmp_path / "scaled.pt")).model
    assert model.scale.tolist() == [3.0, 3.0] and torch.equal(model.linear.weight, saved["linear.weight"])


@pytest.mark.parametrize("name", NAMES)
def test_named_weights_offline_is_a_clear_error(name, monkeypatch):
    from urllib.error import URLError

    ex, _ = loaded(name)
    key = f"visual.{name}.weights"
    offline = {k: (lambda: (_ for _ in ()).throw(URLError("no network"))) for k in ex.named_weights}
    monkeypatch.setattr(type(ex), "named_weights", offline)
    for source in list(offline) + list(ex.local_only_weights):
        with pytest.raises(weights.WeightsError, match=key):
            weights.load(ex, source)
    assert list(offline) + list(ex.local_only_weights)  # every extractor names a standard source


def test_resnet152_logits_and_sequence():
    ex, lw = fresh("resnet152", resnet152={"output": "logits", "keep_sequence": True})
    assert ex.dims() == {"resnet152_logits": [1000], "resnet152_logits_seq": [T, 1000]}
    out = Engine(ex, lw.model, FP32)(frames())
    seq = out["resnet152_logits_seq"].reshape(2, T, 1000)  # (B, T, D)
    np.testing.assert_allclose(seq.mean(axis=1), out["resnet152_logits"], rtol=1e-5, atol=1e-5)


def test_c3d_fc7_and_i3d_clips_options():
    ex, lw = fresh("c3d", c3d={"layer": "fc7"})
    out = Engine(ex, lw.model, FP32)(frames(1))
    assert out["c3d_fc7"].shape == (1, 4096) and (out["c3d_fc7"] >= 0).all()  # after ReLU
    ex, lw = fresh("i3d", i3d={"num_frames": 4, "sampling": "clips"})
    assert ex.plan().shape == (2, 4)  # T=8 -> two consecutive 4-frame clips
    assert Engine(ex, lw.model, FP32)(frames(1))["i3d_pool"].shape == (1, 2048)


def test_resnet152_runs_on_an_even_subset_of_frames():
    ex, lw = fresh("resnet152", resnet152={"num_frames": 2, "keep_sequence": True})
    assert ex.dims()["resnet152_pool_seq"] == [2, 2048]
    clips = frames(1)
    sub = Engine(ex, lw.model, FP32)(clips)
    every = registry.create("resnet152", visual_config(resnet152={"num_frames": 0}), 2)
    full = Engine(every, lw.model, FP32)(np.ascontiguousarray(clips[:, [2, 6]]))  # centres of 2 segments of 8
    np.testing.assert_allclose(
        sub["resnet152_pool"], full["resnet152_pool"], rtol=1e-4, atol=1e-4 * abs(full["resnet152_pool"]).max()
    )


@pytest.mark.parametrize("name", ["scene", "i3d"])
def test_class_probabilities_are_distributions(name):
    probs = reference(name)[f"{name}_probs"]
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    assert (probs >= 0).all()


def test_i3d_probs_off_leaves_the_pooled_features_unchanged():
    ex, lw = fresh("i3d", i3d={"probs": False})
    out = Engine(ex, lw.model, FP32)(frames())
    assert set(out) == {"i3d_pool"} and ex.dims() == {"i3d_pool": [2048]}
    np.testing.assert_allclose(out["i3d_pool"], reference("i3d")["i3d_pool"], rtol=1e-5, atol=1e-6)


def test_scene_classes_follow_the_weights_file(tmp_path):
    from pipeline.visual.extractors.scene import classes_in

    ex, _ = loaded("scene")
    model = ex.build()
    model.classifier[6] = torch.nn.Linear(4096, 7)  # a 7-scene head
    path = tmp_path / "scenes7.pt"
    torch.save({"state_dict": model.state_dict()}, path)
    assert classes_in(str(path)) == 7 and classes_in("random") == 365
    ex7 = registry.create("scene", visual_config(scene={"weights": str(path)}), T)
    assert ex7.dims()["scene_probs"] == [7]
    out = Engine(ex7, weights.load(ex7, str(path)).model, FP32)(frames(1))
    assert out["scene_probs"].shape == (1, 7) and abs(out["scene_probs"].sum() - 1) < 1e-5


def test_flow_stream_takes_two_channels_only():
    ex, lw = loaded("i3d_flow")
    assert ex.source == "flow" and ex.channels == 2
    assert lw.model.blocks[0].conv.weight.shape[1] == 2
    with pytest.raises(RuntimeError):  # RGB frames do not fit the 2-channel first conv
        Engine(ex, lw.model, FP32)(frames(1, channels=3))

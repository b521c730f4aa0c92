"""Device, precision and params validation for the visual stages (no model runs)."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import yaml

from pipeline.core.config import ConfigError, build
from pipeline.core.params import VisualConfig
from pipeline.core.tensors import resolve_device
from pipeline.visual import inference as engine
from tests.pipeline.visual.helpers import REPO, visual_config


def test_device_auto_prefers_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto", "visual.device") == torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto", "visual.device") == torch.device("cpu")
    with pytest.raises(ConfigError, match="visual.device"):
        resolve_device("cuda:0", "visual.device")


@pytest.fixture
def keep_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("native", [True, False])
def test_precision_auto_is_bf16_only_where_native(native, monkeypatch, keep_threads):
    monkeypatch.setattr(engine, "bf16_native", lambda device: native)
    rt = engine.resolve_placement(visual_config(device="cpu", precision="auto", threads=1))
    assert rt.precision == ("bf16" if native else "fp32") and rt.threads == 1
    assert torch.get_num_threads() == 1
    assert engine.resolve_placement(visual_config(device="cpu", precision="fp32", threads=1)).precision == "fp32"


def test_visual_params_reject_unknown_extractor_and_keys():
    raw = yaml.safe_load((REPO / "params.yaml").read_text())["visual"]
    assert build(VisualConfig, raw).extractors == ("resnet152", "c3d", "i3d")
    with pytest.raises(
        ConfigError, match=r"unknown visual extractor 'vgg' in visual.extractors\[0\]; registered: c3d, i3d"
    ):
        build(VisualConfig, raw | {"extractors": ["vgg"]}, "visual")
    with pytest.raises(
        ConfigError, match=r"unknown params key 'visual.resnet153' \(did you mean 'visual.resnet152'\?\)"
    ):
        build(VisualConfig, raw | {"resnet153": raw["resnet152"]}, "visual")
    with pytest.raises(ConfigError, match="extractor 'i3d' is in extractors but has no visual.i3d section"):
        build(VisualConfig, {k: v for k, v in raw.items() if k != "i3d"}, "visual")
    with pytest.raises(ConfigError, match="visual.resnet152.outptu"):
        build(VisualConfig, raw | {"resnet152": raw["resnet152"] | {"outptu": "pool"}}, "visual")
    with pytest.raises(ConfigError, match="visual.c3d.layer"):
        build(VisualConfig, raw | {"c3d": raw["c3d"] | {"layer": "fc8"}}, "visual")
    assert dataclasses.is_dataclass(build(VisualConfig, raw).sections["i3d"])

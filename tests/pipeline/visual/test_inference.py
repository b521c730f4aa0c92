"""Device, precision, the compiled head and params validation for the visual stages (tiny models only)."""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import pytest
import torch
import yaml

from pipeline.core.config import ConfigError, build
from pipeline.core.tensors import resolve_device
from pipeline.params import VisualConfig
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
    with pytest.raises(
        ConfigError, match="params key 'visual.extractors' names 'i3d', which has no visual.i3d section"
    ):
        build(VisualConfig, {k: v for k, v in raw.items() if k != "i3d"}, "visual")
    with pytest.raises(ConfigError, match="visual.resnet152.outptu"):
        build(VisualConfig, raw | {"resnet152": raw["resnet152"] | {"outptu": "pool"}}, "visual")
    with pytest.raises(ConfigError, match="visual.c3d.layer"):
        build(VisualConfig, raw | {"c3d": raw["c3d"] | {"layer": "fc8"}}, "visual")
    assert dataclasses.is_dataclass(build(VisualConfig, raw).sections["i3d"])


def test_random_resnet152_is_numerically_sane_at_either_precision():
    """weights: random must not depend on the CPU: activations of O(1), and bf16 features within 2% of fp32
    (the plain init reached ~3e8 through 50 blocks, and bf16 rounding then swamped the videos' differences)."""
    from pipeline.visual import weights
    from pipeline.visual.extractor import create

    cfg = visual_config(resnet152={"num_frames": 2, "keep_sequence": False})
    ex = create("resnet152", cfg, 2)
    model = weights.load(ex, "random").model
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (3, 2, 64, 64, 3), dtype=np.uint8)
    out = {
        p: engine.Engine(ex, model, engine.Placement(torch.device("cpu"), p, 1))(frames)["resnet152_pool"]
        for p in ("fp32", "bf16")
    }
    assert np.abs(out["fp32"]).max() < 100
    rel = np.linalg.norm(out["bf16"] - out["fp32"]) / np.linalg.norm(out["fp32"])
    assert rel < 0.02
    spread = np.linalg.norm(out["fp32"] - out["fp32"].mean(0))  # the differences between videos survive bf16
    assert np.linalg.norm((out["bf16"] - out["bf16"].mean(0)) - (out["fp32"] - out["fp32"].mean(0))) < 0.1 * spread


def test_compiled_head_gives_the_eager_store_for_every_batch_length(tmp_path, keep_threads):
    """visual.compiled: one graph compiled for a full batch serves the shorter last batch (zero-padded rows),
    the store's features equal the eager ones to float rounding, its metadata says compiled, and a store
    written eager is reused as it is (compiling changes the speed, not the reuse key)."""
    from pipeline.core import store
    from pipeline.decode import decoded
    from pipeline.visual.extractor import output_paths
    from pipeline.visual.weights import WeightsInfo
    from pipeline.visual.worker import VisualWorker, extract_store, store_meta
    from tests.pipeline.visual.helpers import TinyConv, random_frames, write_decoded

    root = write_decoded(tmp_path / "dec", [(f"v{i}", random_frames(i, 2, 24), False) for i in range(5)], 2, 24)
    ex = TinyConv()
    fp32 = engine.Placement(torch.device("cpu"), "fp32", 1)

    def run(graph: str, out: str):
        eng = engine.Engine(ex, ex.build(), fp32)
        if graph == "compiled":
            eng.compile(np.zeros((2, 2, 24, 24, 3), np.uint8))  # batches of 2 videos: 2, 2, then 1
        assert eng.graph == graph
        meta = store_meta(eng, WeightsInfo("random", None, None), decoded.read_meta(root))
        summary = extract_store(VisualWorker(eng, str(root), 2), tmp_path / out, meta)
        path = output_paths(tmp_path / out, "tinyconv")[0]
        return summary, store.read_meta(path)["graph"], store.vectors(store.read_table(path).column("tinyconv"))

    _, graph, eager = run("eager", "eager")
    summary, graph_c, compiled = run("compiled", "compiled")
    assert (graph, graph_c, summary.computed) == ("eager", "compiled", 5)
    np.testing.assert_allclose(compiled, eager, rtol=1e-5, atol=1e-6)
    again, _, _ = run("compiled", "eager")  # the eager store, extended by a compiled run: nothing to do
    assert again.computed == 0


def test_compile_stays_eager_at_other_precisions_and_when_it_fails(monkeypatch, caplog):
    from tests.pipeline.visual.helpers import TinyConv

    ex = TinyConv()
    example = np.zeros((1, 2, 16, 16, 3), np.uint8)
    bf16 = engine.Engine(ex, ex.build(), engine.Placement(torch.device("cpu"), "bf16", 1))
    with caplog.at_level(logging.INFO, logger="visual.engine"):
        bf16.compile(example)
    assert bf16.graph == "eager" and "visual.compiled applies to fp32; this run is bf16" in caplog.text

    def no_compiler(net, dynamic):
        def fail(x):
            raise RuntimeError("InductorError: CppCompileError: C++ compile error\nmore lines")

        return fail

    monkeypatch.setattr(torch, "compile", no_compiler)
    fp32 = engine.Engine(ex, ex.build(), engine.Placement(torch.device("cpu"), "fp32", 1))
    with caplog.at_level(logging.WARNING, logger="visual.engine"):
        fp32.compile(example)
    assert fp32.graph == "eager" and "torch.compile failed, the fp32 head runs eager: InductorError" in caplog.text
    assert fp32(example)["tinyconv"].shape == (1, 16)  # and it runs


def test_compiled_names_registered_extractors():
    raw = yaml.safe_load((REPO / "params.yaml").read_text())["visual"]
    assert build(VisualConfig, raw | {"compiled": ["resnet152"]}).compiled == ("resnet152",)
    with pytest.raises(ConfigError, match=r"unknown visual extractor 'resnet50' in visual.compiled\[0\]"):
        build(VisualConfig, raw | {"compiled": ["resnet50"]}, "visual")

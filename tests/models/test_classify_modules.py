"""Shapes and invariants of every aggregation, fusion and the assembled classifier."""

from __future__ import annotations

import pytest
import torch

from models.classify import AGGREGATIONS, FUSIONS, build_aggregation, build_fusion
from models.classify.aggregations._base import Aggregation
from models.classify.aggregations.attention import AttentionPool
from models.classify.aggregations.netvlad import NetVLAD
from models.classify.fusions._base import Fusion
from models.classify.fusions.attention import AttentionFusion
from models.classify.model import BranchSpec, Classifier, ModelSpec
from pipeline.core.config import ConfigError, build
from pipeline.core.store import plain
from pipeline.params import ClassifyConfig, load_params
from registry import UnknownName
from tests.conftest import ROOT

B, T, D, K = 5, 7, 6, 3


@pytest.mark.parametrize(
    "registry, package, base, names",
    [
        (AGGREGATIONS, "aggregations", Aggregation, ["attention", "mean", "netvlad"]),
        (FUSIONS, "fusions", Fusion, ["attention", "concat"]),
    ],
)
def test_registry_names_are_the_plugin_modules_and_each_registers_itself(registry, package, base, names):
    modules = sorted(
        p.stem for p in (ROOT / "models" / "classify" / package).glob("*.py") if not p.stem.startswith("_")
    )
    assert registry.names() == modules == names
    for name, cls in registry.items():
        assert cls.__module__ == f"models.classify.{package}.{name}" and issubclass(cls, base)


@pytest.mark.parametrize("name", AGGREGATIONS.names())
def test_aggregation_output_shape(name):
    agg = build_aggregation(name, D, K)
    out = agg(torch.randn(B, T, D))
    assert out.shape == (B, agg.d_out) and agg.d_out == (K * D if name == "netvlad" else D)


def test_attention_weights_sum_to_one_and_mean_is_the_equal_score_case():
    torch.manual_seed(0)
    pool = AttentionPool(D, K)
    x = torch.randn(B, T, D)
    w = pool.weights(x)
    assert w.shape == (B, T) and torch.allclose(w.sum(1), torch.ones(B)) and (w > 0).all()
    torch.nn.init.zeros_(pool.score[-1].weight)  # equal scores
    assert torch.allclose(pool(x), x.mean(1), atol=1e-6)


def test_netvlad_output_is_l2_normalised_and_order_invariant():
    torch.manual_seed(0)
    vlad = NetVLAD(D, K)
    x = torch.randn(B, T, D)
    out = vlad(x)
    assert torch.allclose(out.norm(dim=1), torch.ones(B), atol=1e-5)
    assert torch.allclose(vlad(x[:, torch.randperm(T)]), out, atol=1e-5)  # a sum over frames


@pytest.mark.parametrize("name", FUSIONS.names())
def test_fusion_output_shape_and_masked_token_values_do_not_matter(name):
    torch.manual_seed(0)
    fusion = build_fusion(name, 4, D)
    tokens, mask = torch.randn(B, 4, D), torch.ones(B, 4, dtype=torch.bool)
    mask[:2, 1] = False
    out = fusion(tokens, mask)
    assert out.shape == (B, fusion.d_out) and fusion.d_out == 4 * D
    junk = tokens.clone()
    junk[:2, 1] = torch.tensor(float("nan"))
    assert torch.equal(fusion(junk, mask), out)


def test_attention_fusion_weights_sum_to_one_over_present_tokens_and_absent_get_zero():
    fusion = AttentionFusion(3, D)
    mask = torch.tensor([[True, True, True], [True, False, True], [False, False, False]])
    w = fusion.weights(torch.randn(3, 3, D), mask)
    assert torch.allclose(w[:2].sum(1), torch.ones(2)) and w[1, 1] == 0 and torch.equal(w[2], torch.zeros(3))


@pytest.mark.parametrize("builder, registry", [(build_aggregation, AGGREGATIONS), (build_fusion, FUSIONS)])
def test_unknown_name_lists_the_valid_ones(builder, registry):
    with pytest.raises(UnknownName, match=", ".join(registry.names())):
        builder("nope", D, K)
    with pytest.raises(UnknownName, match="did you mean 'attention'"):
        registry.check("atention")


@pytest.mark.parametrize("key", ["aggregation", "fusion"])
def test_unknown_name_in_params_fails_when_params_are_built(key):
    data = plain(load_params(ROOT / "params.yaml").classify)
    if key == "fusion":
        data["fusion"] = "sum"
    else:
        data["audio"]["aggregation"] = "max"
    with pytest.raises((ConfigError, UnknownName)) as err:  # a Literal's message or the registry's check
        build(ClassifyConfig, data, "classify")
    valid = FUSIONS.names() if key == "fusion" else AGGREGATIONS.names()
    assert all(name in str(err.value) for name in valid), err.value


def spec(aggregation: str, fusion: str, shared_private: bool) -> ModelSpec:
    return ModelSpec(
        (BranchSpec("visual", "sequence", (T, D), aggregation), BranchSpec("audio", "vector", (4,), "mean")),
        ("a", "b", "c"),
        8,
        K,
        fusion,
        shared_private,
        0.5,
    )


@pytest.mark.parametrize("fusion", FUSIONS.names())
@pytest.mark.parametrize("aggregation", AGGREGATIONS.names())
@pytest.mark.parametrize("shared_private", [False, True])
def test_classifier_shapes_and_no_audio_junk_changes_nothing(aggregation, fusion, shared_private):
    torch.manual_seed(0)
    model = Classifier(spec(aggregation, fusion, shared_private)).eval()
    mask = torch.tensor([True, False, True, False, True])
    batch = {
        "visual": torch.randn(B, T, D),
        "visual_mask": torch.ones(B, dtype=torch.bool),
        "audio": torch.randn(B, 4),
        "audio_mask": mask,
    }
    out = model(batch)
    assert out.logits.shape == (B, 3)
    assert set(out.shared) == ({"visual", "audio"} if shared_private else set())
    if shared_private:
        assert out.private["audio"].shape == out.shared["visual"].shape == (B, 8)
    junk = {**batch, "audio": torch.where(mask[:, None], batch["audio"], torch.full((B, 4), 1e6))}
    junk["audio"][1, 0] = float("nan")
    assert torch.equal(model(junk).logits, out.logits)

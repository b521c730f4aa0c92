from __future__ import annotations

import dataclasses
import itertools

import pytest
import torch

from models.ctr import MODELS, build
from models.ctr.base import CtrModel, CtrSizes, FeatureSpec
from models.layers import fm_pairwise
from pipeline.core.params import CtrConfig
from pipeline.ctr.train import load_checkpoint, model_sizes, save_checkpoint
from registry import UnknownName
from tests.conftest import ROOT

SPEC = FeatureSpec(n_users=9, n_items=13, categorical=(4, 3), multi=(6,), n_numeric=2, history=5)
CFG = CtrConfig(
    model="fm",
    use_content=True,
    content=("a", "b"),
    embed_dim=8,
    mlp=(16, 8),
    heads=2,
    attention_dim=8,
    dropout=0.0,
    lr=0.01,
    weight_decay=0.0,
    batch_size=32,
    epochs=1,
    patience=1,
    seed=0,
    threads=1,
)
SIZES = CtrSizes(embed_dim=8, mlp=(16, 8), heads=2, attention_dim=8, dropout=0.0)
B = 24


def content() -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(1)
    mask_b = torch.ones(SPEC.n_items, dtype=torch.bool)
    mask_b[[0, 3, 4]] = False  # item 0 is padding; items 3, 4 have no audio
    mask_a = torch.ones(SPEC.n_items, dtype=torch.bool)
    mask_a[0] = False
    return {
        "a": (torch.randn(SPEC.n_items, 7, generator=g), mask_a),
        "b": (torch.randn(SPEC.n_items, 3, generator=g), mask_b),
    }


def batch(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    hist_len = torch.randint(0, SPEC.history + 1, (B,), generator=g)
    hist = torch.randint(1, SPEC.n_items, (B, SPEC.history), generator=g)
    hist = hist * (torch.arange(SPEC.history) < hist_len[:, None])  # left-aligned, 0-padded
    multi = torch.randint(0, 6, (B, 1, 3), generator=g)
    return {
        "user": torch.randint(1, SPEC.n_users, (B,), generator=g),
        "item": torch.randint(1, SPEC.n_items, (B,), generator=g),
        "cat": torch.stack([torch.randint(0, 4, (B,), generator=g), torch.randint(0, 3, (B,), generator=g)], 1),
        "multi": multi,
        "num": torch.randn(B, 2, generator=g),
        "hist": hist,
        "hist_len": hist_len,
        "label": (torch.rand(B, generator=g) < 0.5).float(),
    }


CASES = list(itertools.product(MODELS.names(), [True, False]))


@pytest.mark.parametrize(("name", "with_content"), CASES)
def test_shape_backward_and_loss_decreases(name, with_content):
    torch.manual_seed(0)
    model = build(name, SPEC, SIZES, content() if with_content else None)
    b = batch()
    out = model(b)
    assert out.shape == (B,) and torch.isfinite(out).all()
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    losses = []
    for _ in range(40):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(b), b["label"])
        opt.zero_grad()
        loss.backward()
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        assert grads and all(torch.isfinite(g).all() for g in grads)
        opt.step()
        losses.append(loss.detach().item())
    assert losses[-1] < 0.7 * losses[0]


@pytest.mark.parametrize(("name", "with_content"), CASES)
def test_save_load_gives_identical_outputs(name, with_content, tmp_path):
    torch.manual_seed(0)
    model = build(name, SPEC, SIZES, content() if with_content else None).eval()
    path = save_checkpoint(tmp_path / "m.pt", model, name, SPEC, CFG)
    loaded, blob = load_checkpoint(path)
    b = batch(3)
    with torch.no_grad():
        assert torch.equal(model(b), loaded(b))
    assert blob["model"] == name


def test_padding_and_absent_content_do_not_leak():
    """Items without a modality's vector are masked; history padding does not change the output."""
    model = build("din", SPEC, SIZES, content()).eval()
    b = batch(5)
    b2 = dict(b)
    b2["hist"] = torch.cat([b["hist"], torch.zeros(B, 3, dtype=torch.long)], 1)  # more padding
    with torch.no_grad():
        assert torch.allclose(model(b), model(b2), atol=1e-6)
        modal, mask = model.modalities(torch.tensor([3, 5]))
    assert mask.tolist() == [[True, False], [True, True]]
    assert torch.all(modal[0, 1] == 0)


def test_fm_pairwise_equals_the_brute_force_sum():
    x = torch.randn(4, 6, 5, dtype=torch.float64)
    brute = sum((x[:, i] * x[:, j]).sum(-1) for i in range(6) for j in range(i + 1, 6))
    assert torch.allclose(fm_pairwise(x), brute)


def test_params_give_the_model_sizes():
    assert model_sizes(CFG) == SIZES
    assert model_sizes({**dataclasses.asdict(CFG), "mlp": [16, 8]}) == SIZES  # as a checkpoint stores them


def test_registry_names_are_the_zoo_modules_and_each_registers_itself():
    zoo = sorted(p.stem for p in (ROOT / "models" / "ctr" / "zoo").glob("*.py") if not p.stem.startswith("_"))
    assert MODELS.names() == zoo == ["amfr", "deepfm", "din", "fm", "lr", "mmie"]
    for name, cls in MODELS.items():
        assert cls.__module__ == f"models.ctr.zoo.{name}" and issubclass(cls, CtrModel)


def test_unknown_model_lists_the_registry():
    with pytest.raises(UnknownName, match="amfr, deepfm, din, fm, lr, mmie"):
        build("xdeepfm", SPEC, SIZES)
    with pytest.raises(UnknownName, match="did you mean 'deepfm'"):
        MODELS.check("deepfn")


def test_target_attention_equals_the_concatenated_form():
    from models.layers import TargetAttention

    att = TargetAttention(4, 6)
    q, k = torch.randn(3, 4), torch.randn(3, 5, 4)
    mask = torch.tensor([[1, 1, 0, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]], dtype=torch.bool)
    qq = q.unsqueeze(1).expand_as(k)
    s = att.out(torch.sigmoid(att.first(torch.cat([qq, k, qq - k, qq * k], -1)))).squeeze(-1)
    want = torch.softmax(s.masked_fill(~mask, -1e9), 1) * mask
    assert torch.allclose(att.weights(q, k, mask), want, atol=1e-6)

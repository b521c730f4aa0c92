from __future__ import annotations

import dataclasses
import itertools

import pytest
import torch

from models.ctr import MODELS, build
from models.ctr.base import CLIP_KEY, CtrModel, CtrSizes, FeatureSpec
from models.layers import fm_pairwise
from pipeline.ctr.train import load_checkpoint, model_sizes, save_checkpoint
from pipeline.params import CtrConfig, CtrFrameConfig, CtrSessionConfig, CtrTrendConfig
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
    warmup=0,
    monitor="auc",
    id_dropout=0.0,
    sessions=CtrSessionConfig(gap_s=1800, length=3, count=2),
    trends=CtrTrendConfig(count=3, routing_iterations=3, neighbours=4, future=4, use_future=True, time_attention=True),
    frame=CtrFrameConfig(clip_weight=1.0),
    seed=0,
    threads=1,
)
SIZES = CtrSizes(
    embed_dim=8,
    mlp=(16, 8),
    heads=2,
    attention_dim=8,
    dropout=0.0,
    id_dropout=0.0,
    session_count=2,
    session_length=3,
    trend_count=3,
    routing_iterations=3,
    use_future=True,
    time_attention=True,
    clip_weight=1.0,
)
B = 24


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors: a second torch thread only contends for the cores (a sequence model's 40 steps took 6 s
    with two threads on a shared 2-core machine, 0.4 s with one)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


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


def model_content(name: str, with_content: bool = True) -> dict | None:
    """``content()`` (or None), plus the clip vectors a ``uses_clips`` model needs either way."""
    out = content() if with_content else {}
    if MODELS.get(name).uses_clips:
        g = torch.Generator().manual_seed(2)
        present = torch.ones(SPEC.n_items, dtype=torch.bool)
        present[[0, 6]] = False  # item 6 has no clip vectors
        out[CLIP_KEY] = (torch.randn(SPEC.n_items, 4, 5, generator=g), present)
    return out or None


def batch(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    hist_len = torch.randint(0, SPEC.history + 1, (B,), generator=g)
    hist = torch.randint(1, SPEC.n_items, (B, SPEC.history), generator=g)
    hist = hist * (torch.arange(SPEC.history) < hist_len[:, None])  # left-aligned, 0-padded
    multi = torch.randint(0, 6, (B, 1, 3), generator=g)
    # sessions (sdin): the history's items cut in two sessions of <= 3, left-aligned like the history
    sess = torch.zeros(B, 2, 3, dtype=torch.long)
    sess[:, 0], sess[:, 1, :2] = hist[:, :3], hist[:, 3:5]
    out = {
        "user": torch.randint(1, SPEC.n_users, (B,), generator=g),
        "item": torch.randint(1, SPEC.n_items, (B,), generator=g),
        "cat": torch.stack([torch.randint(0, 4, (B,), generator=g), torch.randint(0, 3, (B,), generator=g)], 1),
        "multi": multi,
        "num": torch.randn(B, 2, generator=g),
        "hist": hist,
        "hist_len": hist_len,
        "sess": sess,
        "label": (torch.rand(B, generator=g) < 0.5).float(),
        "skip": torch.randint(-1, 5, (B,), generator=g),  # frame: clips watched through (-1 unknown, 4 all)
    }
    # times (dmr): behaviours seconds to months before the sample, oldest first; 0 on padding
    ts = 10**9 + torch.randint(0, 10**6, (B,), generator=g)
    gaps = torch.randint(1, 10**7, (B, SPEC.history), generator=g).sort(1, descending=True).values
    fut_len = torch.randint(0, 5, (B,), generator=g)
    fut = torch.randint(1, SPEC.n_items, (B, 4), generator=g) * (torch.arange(4) < fut_len[:, None])
    fut_gaps = torch.randint(1, 10**6, (B, 4), generator=g).sort(1, descending=True).values
    return out | {
        "ts": ts,
        "hist_ts": (ts[:, None] - gaps) * (hist > 0),
        "fut": fut,
        "fut_ts": (ts[:, None] - fut_gaps) * (fut > 0),
    }


CASES = list(itertools.product(MODELS.names(), [True, False]))


@pytest.mark.parametrize(("name", "with_content"), CASES)
def test_shape_backward_and_loss_decreases(name, with_content):
    torch.manual_seed(0)
    model = build(name, SPEC, SIZES, model_content(name, with_content))
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
    model = build(name, SPEC, SIZES, model_content(name, with_content)).eval()
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
    old = {k: v for k, v in dataclasses.asdict(CFG).items() if k != "trends"}  # a checkpoint from before dmr
    assert model_sizes(old) == dataclasses.replace(
        SIZES, trend_count=1, routing_iterations=1, use_future=False, time_attention=False
    )
    before_frame = {k: v for k, v in dataclasses.asdict(CFG).items() if k != "frame"}
    assert model_sizes(before_frame) == dataclasses.replace(SIZES, clip_weight=0.0)


def test_registry_names_are_the_zoo_modules_and_each_registers_itself():
    zoo = sorted(p.stem for p in (ROOT / "models" / "ctr" / "zoo").glob("*.py") if not p.stem.startswith("_"))
    assert MODELS.names() == zoo == ["amfr", "deepfm", "din", "dmr", "fm", "frame", "lr", "mmie", "sdin"]
    for name, cls in MODELS.items():
        assert cls.__module__ == f"models.ctr.zoo.{name}" and issubclass(cls, CtrModel)


def test_unknown_model_lists_the_registry():
    with pytest.raises(UnknownName, match="amfr, deepfm, din, dmr, fm, frame, lr, mmie, sdin"):
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


@pytest.mark.parametrize("name", MODELS.names())
def test_an_unseen_item_is_scored_through_the_shared_row_never_its_own(name):
    """Cold items (targets or behaviours) read the unseen-item row: their own ID rows cannot change a score."""
    torch.manual_seed(0)
    model = build(name, SPEC, SIZES, model_content(name)).eval()
    cold = torch.tensor([2, 5, 7, 11])
    model.seen[cold] = False
    b = batch(7)
    with torch.no_grad():
        before = model(b)
        for table in (model.fields.item, model.first_order.item):
            table.weight[cold] += 5.0  # what an untrained (or "never clicked") row would hold
        after = model(b)
        assert torch.equal(before, after)
        assert torch.isin(b["item"], cold).any()  # the batch does hold cold targets
        for table in (model.fields.item, model.first_order.item):
            table.weight[model.unseen] += 0.5  # the shared row does score them
            table.weight[4] += 5.0  # and a seen item's own row scores it
        moved = model(b) != after
    assert moved[torch.isin(b["item"], cold)].all()
    assert moved[b["item"] == 4].all() and (b["item"] == 4).any()


def test_id_dropout_trains_the_unseen_row_in_training_only():
    torch.manual_seed(0)
    sizes = dataclasses.replace(SIZES, id_dropout=0.5)
    model = build("deepfm", SPEC, sizes, content())
    b = batch(2)
    torch.nn.functional.binary_cross_entropy_with_logits(model(b), b["label"]).backward()
    assert model.fields.item.weight.grad[model.unseen].abs().sum() > 0
    model.eval()
    assert torch.equal(model(b), model(b))  # no dropout at inference
    plain = build("deepfm", SPEC, SIZES, content())
    torch.nn.functional.binary_cross_entropy_with_logits(plain(b), b["label"]).backward()
    assert plain.fields.item.weight.grad[plain.unseen].abs().sum() == 0  # every item seen, no dropout


def test_self_attention_ignores_masked_positions():
    from models.layers import SelfAttentionBlock

    torch.manual_seed(0)
    block = SelfAttentionBlock(8, 2, 0.0).eval()
    x = torch.randn(3, 5, 8)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [0, 0, 0, 0, 0]], dtype=torch.bool)
    y = x.clone()
    y[~mask] = torch.randn(int((~mask).sum()), 8)  # other padding values
    with torch.no_grad():
        a, c = block(x, mask), block(y, mask)
    assert torch.allclose(a[mask], c[mask], atol=1e-6) and torch.isfinite(c).all()  # an all-padding row: no NaN


def test_sdin_reads_sessions_in_order():
    """The interest evolves across sessions: swapping two sessions changes the score; padding does not."""
    torch.manual_seed(0)
    model = build("sdin", SPEC, SIZES, content()).eval()
    b = batch(4)
    full = (b["sess"] > 0).any(-1).all(-1)  # rows with two sessions
    swapped = dict(b, sess=b["sess"].flip(1))
    with torch.no_grad():
        out, out_swapped = model(b), model(swapped)
        assert full.any() and not torch.allclose(out[full], out_swapped[full])
        one = ~(b["sess"][:, 1] > 0).any(-1)  # rows with one session or none: its slot order is fixed
        assert torch.equal(out[one], model(dict(b, hist=b["hist"] * 0))[one])  # sdin reads sess, not hist


def test_frame_trains_its_clip_interest_from_the_skip_labels():
    """The clip loss reaches the clip interest: the watched-through clips end up above the clips left at."""
    torch.manual_seed(0)
    model = build("frame", SPEC, SIZES, model_content("frame"))
    b = batch(6)
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(60):
        loss = model.training_loss(b)
        opt.zero_grad()
        loss.backward()
        opt.step()
    from models.ctr.zoo.frame import clip_targets

    labels, mask = clip_targets(b["skip"], model.n_clips)
    with torch.no_grad():
        interest = model.eval().clip_interest(b)[0]
    assert mask.any() and (labels[mask] == 0).any() and (labels[mask] == 1).any()
    pos, neg = interest[mask][labels[mask] == 1], interest[mask][labels[mask] == 0]
    assert (pos[:, None] > neg[None, :]).float().mean() > 0.9  # clip AUC on its training clips
    assert torch.equal(model(b), model(dict(b, skip=b["skip"] * 0)))  # skip is a label, never an input


def test_frame_needs_its_clip_vectors():
    with pytest.raises(ValueError, match="frame needs clip vectors"):
        build("frame", SPEC, SIZES, content())

"""The one top-K training loop on a small synthetic dataset: negatives, loss, determinism, checkpoints,
and content models against BPR-MF on the cold slice."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
import torch
from torch import nn

from models.rec import MODELS
from models.rec.base import Loss, RecModel, bpr, l2
from pipeline.core.config import ConfigError
from pipeline.datasets import RawData
from pipeline.params import CtrSplitConfig, EasyProfile, FeaturesConfig, LabelRule, RecConfig, RecDataConfig
from pipeline.rec import data as rec_data
from pipeline.rec import synthetic
from pipeline.rec.metrics import Pairs, evaluate
from pipeline.rec.train import (
    COLD_SHIFTS,
    COLD_SLOPES,
    COLD_SPREADS,
    calibrate_cold,
    defaults,
    final_metrics,
    fit,
    fit_cold_scorer,
    load_checkpoint,
    make_model,
    rank,
    sample_negatives,
    save_checkpoint,
)

SAMPLE = EasyProfile(500, 300, 8, 15, 0.8, 0.15, 0.1, 0.2, (32, 16), 0.5)
DATA_CFG = RecDataConfig(
    "mmrec",
    "x",
    LabelRule(4, None),
    CtrSplitConfig("random", 0.1, 0.2, 0),
    FeaturesConfig(None, False, "zscore"),
    "drop",
    0,
)
CFG = RecConfig(
    model="bpr_mf",
    embed_dim=32,
    layers=1,
    mlp=(32,),
    rank=2,
    knn=5,
    dropout=0.0,
    content=(),
    lr=0.01,
    reg=1e-4,
    batch_size=512,
    epochs=6,
    warmup=0,
    eval_every=1,
    patience=3,
    cold_calibration=True,
    cold_budget=0.1,
    profile_weight=0.0,
    eval_batch=4096,
    seed=0,
    threads=1,
)
CONTENT_MODELS = [m for m in ("vbpr", "mmgcn", "metammf") if m in MODELS.names()]


@pytest.fixture(scope="module")
def data() -> rec_data.RecData:
    s = synthetic.easy(SAMPLE, 0)
    items = __import__("pyarrow").table({"video_id": [str(k) for k in range(SAMPLE.n_items)]})
    table = __import__("pyarrow").table(
        {"user_id": s.user.astype(str), "video_id": s.item.astype(str), "split": s.split}
    )
    return rec_data.build(RawData(table, None, items, s.features), DATA_CFG)[0]


class ToyVbpr(RecModel):
    """Item = ID embedding + a projection of its content (VBPR's idea, in a few lines): a cold item's
    ID row never moves from its small init, so its content decides."""

    def __init__(self, sizes, graph, content):
        super().__init__(sizes, graph, content)
        self.register_buffer("x", torch.cat([v for v, _ in content.values()], 1))
        self.user, self.item = (
            nn.Embedding(sizes.n_users, sizes.embed_dim),
            nn.Embedding(sizes.n_items, sizes.embed_dim),
        )
        nn.init.normal_(self.user.weight, std=0.1)
        nn.init.normal_(self.item.weight, std=0.01)
        self.proj = nn.Linear(self.x.shape[1], sizes.embed_dim, bias=False)

    def items(self, idx=None):
        x = self.x if idx is None else self.x[idx]
        return (self.item.weight if idx is None else self.item(idx)) + self.proj(x)

    def loss(self, users, pos, neg):
        u, p, n = self.user(users), self.items(pos), self.items(neg)
        return Loss(bpr((u * p).sum(-1), torch.einsum("bd,bnd->bn", u, n)), l2(u, self.item(pos), self.item(neg)))

    def scores(self, users):
        return self.user(users) @ self.items().T


@pytest.fixture
def toy():
    MODELS.register("toy_vbpr", ToyVbpr)
    yield "toy_vbpr"
    MODELS.unregister("toy_vbpr")


def test_negatives_are_never_a_training_positive():
    rng = np.random.default_rng(0)
    user = np.repeat(np.arange(5), 3)
    item = rng.integers(0, 8, len(user))
    seen = np.unique(user * 8 + item)
    neg = sample_negatives(user, 4, 8, seen, rng)
    assert neg.shape == (15, 4) and neg.min() >= 0 and neg.max() < 8
    assert not np.isin(user[:, None] * 8 + neg, seen).any()


def test_the_loss_decreases_and_the_best_epoch_is_kept(data):
    result = fit(CFG, data)
    losses = [r["train_loss"] for r in result.curve]
    assert all(b < a for a, b in zip(losses, losses[1:])) and losses[-1] < losses[0] - 0.05, losses
    best = max(r["valid_recall@20"] for r in result.curve)
    assert rank(result.model, data, 1, ks=(20,))["recall@20"] == pytest.approx(best)  # the restored weights


def test_training_is_deterministic_down_to_the_checkpoint_bytes(data, tmp_path):
    cfg = dataclasses.replace(CFG, epochs=2)
    a, b = fit(cfg, data), fit(cfg, data)
    save_checkpoint(tmp_path / "a.pt", a.model, cfg)
    save_checkpoint(tmp_path / "b.pt", b.model, cfg)
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "b.pt").read_bytes()
    assert [r["train_loss"] for r in a.curve] == [r["train_loss"] for r in b.curve]


def test_a_saved_model_scores_the_same_after_loading(data, tmp_path):
    result = fit(dataclasses.replace(CFG, epochs=1), data)
    save_checkpoint(tmp_path / "m.pt", result.model, CFG)
    users = torch.arange(10)
    result.model.eval()
    assert torch.equal(load_checkpoint(tmp_path / "m.pt", data).scores(users), result.model.scores(users))


def test_a_checkpoint_from_before_the_activity_slope_loads_with_slope_zero(data, tmp_path):
    cfg = dataclasses.replace(CFG, model="vbpr", epochs=2)
    save_checkpoint(tmp_path / "m.pt", fit(cfg, data).model, cfg)
    blob = torch.load(tmp_path / "m.pt", weights_only=True)
    blob["state"]["cold_affine"] = torch.tensor([2.0, 0.5])  # (spread, shift), as saved before the slope
    torch.save(blob, tmp_path / "old.pt")
    assert load_checkpoint(tmp_path / "old.pt", data).cold_affine.tolist() == [2.0, 0.5, 0.0]


def test_the_content_profile_is_trained_first_and_every_validation_ranking_blends_it_in(data, tmp_path):
    cfg = dataclasses.replace(CFG, model="vbpr", epochs=3, cold_calibration=False, profile_weight=0.5)
    model = make_model(cfg, data)
    init = model.cold_scorer.map.weight.detach().clone()
    result = fit(cfg, data, model)
    assert not torch.equal(model.cold_scorer.map.weight, init)  # trained, though the cold placement is off
    assert float(model.profile_weight) == 0.5 and model.cold_affine.tolist() == [0.0, 0.0, 0.0]
    blended = rank(model, data, 1, ks=(20,))["recall@20"]
    assert blended == pytest.approx(max(r["valid_recall@20"] for r in result.curve))  # the kept ranking, as scored
    save_checkpoint(tmp_path / "m.pt", model, cfg)
    loaded = load_checkpoint(tmp_path / "m.pt", data)
    assert float(loaded.profile_weight) == 0.5
    assert rank(loaded, data, 1, ks=(20,))["recall@20"] == blended
    blob = torch.load(tmp_path / "m.pt", weights_only=True)
    del blob["state"]["profile_weight"]  # as saved before the blend
    torch.save(blob, tmp_path / "old.pt")
    assert float(load_checkpoint(tmp_path / "old.pt", data).profile_weight) == 0.0


def test_pop_is_evaluated_without_training(data):
    result = fit(dataclasses.replace(CFG, model="pop"), data)
    assert result.curve == [] and result.seconds_per_epoch == 0.0
    metrics = final_metrics(result.model, data, 4096)
    assert metrics["recall@20"] > 0 and metrics["cold"]["recall@20"] == 0.0  # cold items have no count
    assert metrics["users"] + metrics["users_skipped"] == data.n_users


@pytest.mark.parametrize("model", ["toy_vbpr", *CONTENT_MODELS])
def test_content_models_beat_bpr_mf_on_the_cold_slice(data, toy, model):
    cfg = dataclasses.replace(CFG, epochs=15, patience=15)
    cold = {
        m: final_metrics(fit(dataclasses.replace(cfg, model=m), data).model, data, 4096)["cold"]
        for m in ("bpr_mf", model)
    }
    assert cold[model]["users"] > 20
    assert cold[model]["recall@20"] > cold["bpr_mf"]["recall@20"] + 0.05, cold


def test_early_stopping_waits_for_the_warm_up_and_counts_patience_in_rankings(data):
    # patience 1 would stop at the second ranking that is no better; the warm-up keeps it going to epoch 5
    cfg = dataclasses.replace(CFG, lr=1e-6, epochs=8, patience=1, warmup=5, eval_every=2)
    result = fit(cfg, data)
    ranked = [r["epoch"] for r in result.curve]
    assert ranked[:3] == [2, 4, 6] and result.epochs == 6 and ranked[-1] == 6  # stopped at the first ranking past 5
    assert fit(dataclasses.replace(cfg, warmup=0), data).epochs == 4  # without it: the second flat ranking


ID_ROWS = {"user.weight", "item.weight"}


@pytest.mark.parametrize("model", ["vbpr", "mmgcn", "freedom"])
def test_a_staged_model_trains_its_id_base_first_and_keeps_content_only_when_validation_improves(data, model):
    cfg = dataclasses.replace(CFG, model=model, epochs=4, patience=2, cold_calibration=False)
    built = make_model(cfg, data)
    init = {k: v.clone() for k, v in built.state_dict().items() if k not in ID_ROWS}
    result = fit(cfg, data, built)
    assert built.staged and 1 < result.content_from <= 5  # phase 1: up to 4 epochs, then the content phase
    assert [r["epoch"] for r in result.curve] == list(range(1, result.epochs + 1))  # eval_every 1, one count
    base = [r["valid_recall@20"] for r in result.curve if r["epoch"] < result.content_from]
    content = [r["valid_recall@20"] for r in result.curve if r["epoch"] >= result.content_from]
    assert base and content
    # content is kept exactly when a content-phase ranking beat the base's best, and the kept state is the best
    assert result.model.content_on == (max(content) > max(base))
    assert rank(result.model, data, 1, ks=(20,))["recall@20"] == pytest.approx(max(base + content))
    moved = {k for k, v in result.model.state_dict().items() if k in init and not torch.equal(v, init[k])}
    if result.model.content_on:
        assert moved, "content kept but no content parameter trained"
    else:  # the base never touches a content parameter: the dropped content is still at its init
        assert moved == set(), moved


def test_the_content_phase_keeps_the_base_when_content_is_noise(data):
    """Content unrelated to the clicks, projected large: no content-phase ranking beats the base's, so the
    base's state comes back with the content switched off (what the staging is for, issue 23)."""
    rng = np.random.default_rng(0)
    noise = dataclasses.replace(
        data, features={m: rng.normal(size=x.shape).astype("float32") for m, x in data.features.items()}
    )
    cfg = dataclasses.replace(CFG, model="vbpr", epochs=3, patience=1, cold_calibration=False)
    model = make_model(cfg, noise)
    for proj in model.content.proj:
        torch.nn.init.normal_(proj.weight, std=50.0)
    result = fit(cfg, noise, model)
    assert not result.model.content_on and result.best_epoch < result.content_from


def test_null_lr_reg_and_dropout_take_the_models_own_defaults():
    cfg = dataclasses.replace(CFG, model="freedom", lr=None, reg=None, dropout=None)
    resolved = defaults(cfg)
    cls = MODELS.get("freedom")
    assert (resolved.lr, resolved.reg, resolved.dropout) == (cls.lr, cls.reg, cls.dropout)
    assert defaults(dataclasses.replace(cfg, lr=0.02)).lr == 0.02  # a number overrides the default
    assert MODELS.get("lightgcn").lr != MODELS.get("bpr_mf").lr  # per model, not one rate for all


def test_null_mlp_builds_each_model_with_its_own_hidden_sizes(data):
    """metammf's default is one 32-wide meta layer; metammf_cp and neumf keep (64, 32); a list overrides."""
    cfg = dataclasses.replace(CFG, mlp=None)
    assert defaults(dataclasses.replace(cfg, model="metammf")).mlp == (32,)
    assert defaults(dataclasses.replace(cfg, model="metammf_cp")).mlp == (64, 32)
    assert defaults(dataclasses.replace(cfg, model="neumf")).mlp == (64, 32)
    model = make_model(dataclasses.replace(cfg, model="metammf"), data)
    assert model.sizes.mlp == (32,)
    assert [tuple(layer.shape) for layer in model.fusion] == [(5, 32, 16)]  # signal, 32 in, embed_dim / 2 out
    model = make_model(dataclasses.replace(cfg, model="metammf", mlp=(16, 8)), data)
    assert [tuple(layer.shape) for layer in model.fusion] == [(5, 16, 8), (5, 8, 16)]
    with pytest.raises(ConfigError, match=r"^params rec.model 'metammf': .* needs at least one mlp size, got \[\]$"):
        make_model(dataclasses.replace(cfg, model="metammf", mlp=()), data)


def test_cold_placement_is_fitted_on_validation_within_the_budget(data):
    result = fit(dataclasses.replace(CFG, model="vbpr", epochs=3, cold_budget=0.0), data)
    model = result.model
    spread, shift, slope = model.cold_affine.tolist()
    assert spread in COLD_SPREADS and slope in COLD_SLOPES and (shift == float("-inf") or shift in COLD_SHIFTS)
    chosen = rank(model, data, 1, ks=(20,))["recall@20"]
    for point in itertools.product(COLD_SPREADS, COLD_SHIFTS, COLD_SLOPES):  # budget 0: none ranks validation better
        model.cold_affine.copy_(torch.tensor(point))
        assert rank(model, data, 1, ks=(20,))["recall@20"] <= chosen + 1e-12
    model.cold_affine.copy_(torch.tensor([1.0, float("-inf"), 0.0]))
    assert rank(model, data, 1, ks=(20,))["recall@20"] <= chosen + 1e-12
    # a budget buys cold recall with overall recall, never more than the budget
    loose = calibrate_cold(model, data, 4096, budget=0.5)
    model.cold_affine.copy_(torch.tensor(loose))
    m = rank(model, data, 1, ks=(20,), cold=True)
    assert m["recall@20"] >= 0.5 * chosen - 1e-12 and m["cold/recall@20"] > 0


def test_the_cold_scorer_ranks_cold_items_better_than_chance(data):
    model = make_model(dataclasses.replace(CFG, model="vbpr"), data)
    fit_cold_scorer(model.cold_scorer, data, dataclasses.replace(CFG, epochs=20, patience=5))
    cold = data.cold_items()
    u, i = data.pairs(2)
    keep = cold[i]
    position = np.cumsum(cold) - 1
    targets = Pairs.of(u[keep], position[i[keep]], data.n_users)
    with torch.no_grad():
        m = evaluate(
            lambda b: model.cold_scorer.scores(b)[:, torch.from_numpy(cold)], targets, [], int(cold.sum()), ks=(20,)
        )
    assert m["recall@20"] > 2 * 20 / cold.sum(), m  # test targets among the cold items: well above chance

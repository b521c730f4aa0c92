"""The one top-K training loop on a small synthetic dataset: negatives, loss, determinism, checkpoints,
and content models against BPR-MF on the cold slice."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

from models.rec import MODELS
from models.rec.base import Loss, RecModel, bpr, l2
from pipeline.core.params import CtrSplitConfig, LabelRule, RecConfig, RecDataConfig, RecFeaturesConfig, RecSampleConfig
from pipeline.datasets import RawData
from pipeline.rec import data as rec_data
from pipeline.rec import synthetic
from pipeline.rec.train import final_metrics, fit, load_checkpoint, rank, sample_negatives, save_checkpoint

SAMPLE = RecSampleConfig("tiny", 0, 500, 300, 8, 15, 0.8, 0.15, 0.1, 0.2, (32, 16), 0.5)
DATA_CFG = RecDataConfig(
    "mmrec",
    "x",
    LabelRule(4, None),
    CtrSplitConfig("random", 0.1, 0.2, 0),
    RecFeaturesConfig(None, False, "zscore"),
    "drop",
    0,
)
CFG = RecConfig("bpr_mf", 32, 1, (32,), 2, 5, 0.0, (), 0.01, 1e-4, 512, 6, 3, 4096, 0, 1)
CONTENT_MODELS = [m for m in ("vbpr", "mmgcn", "metammf") if m in MODELS.names()]


@pytest.fixture(scope="module")
def data() -> rec_data.RecData:
    s = synthetic.generate(SAMPLE)
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

"""``dmr`` beyond the zoo-wide checks: trend routing, its ablations, what it reads, that it learns from the future."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from models.ctr import build
from models.layers import TrendRouting, squash
from pipeline.ctr.metrics import auc
from tests.models.test_ctr_models import SIZES, SPEC, batch, content, one_thread  # noqa: F401 (autouse fixture)

ABLATIONS = {
    "full": {},
    "no future": {"use_future": False},
    "one trend": {"trend_count": 1},
    "no time attention": {"time_attention": False},
}


def test_routing_shapes_couplings_and_padding():
    torch.manual_seed(0)
    routing = TrendRouting(6, 3, 3)
    x = torch.randn(4, 5, 6)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [0, 0, 0, 0, 0], [1, 0, 0, 0, 0]], dtype=torch.bool)
    trends, coupling = routing(x, mask)
    assert trends.shape == (4, 3, 6) and coupling.shape == (4, 3, 5)
    assert torch.allclose(coupling.sum(1), mask.float())  # each behaviour shared out whole; padding: nothing
    assert torch.equal(trends[2], torch.zeros(3, 6))  # no behaviour, no trend
    assert (trends.norm(dim=-1) < 1).all()  # squashed
    y = x.clone()
    y[~mask] = torch.randn(int((~mask).sum()), 6)
    assert torch.allclose(routing(y, mask)[0], trends)  # padding values never count
    assert not torch.allclose(trends[1, 0], trends[1, 1])  # the trends differ


def test_one_trend_is_the_squashed_masked_sum():
    torch.manual_seed(0)
    routing = TrendRouting(4, 1, 3)
    x, mask = torch.randn(3, 6, 4), torch.rand(3, 6) < 0.6
    trends, coupling = routing(x, mask)
    want = squash(((x @ routing.maps[0].T) * mask.unsqueeze(-1)).sum(1))  # every behaviour weighs 1
    assert torch.allclose(trends[:, 0], want, atol=1e-6) and torch.equal(coupling[:, 0], mask.float())


@pytest.mark.parametrize("ablation", ABLATIONS)
def test_ablations_build_run_and_train(ablation):
    torch.manual_seed(0)
    model = build("dmr", SPEC, dataclasses.replace(SIZES, **ABLATIONS[ablation]), content())
    b = batch()
    if ablation == "no future":
        b = {k: v for k, v in b.items() if k not in ("fut", "fut_ts")}  # the pipeline builds none for it
    out = model(b)
    assert out.shape == (len(b["label"]),) and torch.isfinite(out).all()
    torch.nn.functional.binary_cross_entropy_with_logits(out, b["label"]).backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    assert (model.time is None) == (ablation == "no time attention")
    assert model.routing[0].count == (1 if ablation == "one trend" else SIZES.trend_count)


def test_dmr_reads_the_future_and_the_time_gaps_and_ignores_padding():
    torch.manual_seed(0)
    model = build("dmr", SPEC, SIZES, content()).eval()
    b = batch(4)
    has_fut, has_hist = (b["fut"] > 0).any(1), b["hist_len"] > 0
    with torch.no_grad():
        out = model(b)
        other_future = model(dict(b, fut=torch.where(b["fut"] > 0, b["fut"] % 12 + 1, 0)))
        later = model(dict(b, ts=b["ts"] + 10**8))  # every gap longer by years
        padded = model(
            dict(
                b,
                fut=torch.cat([b["fut"], torch.zeros(len(out), 3, dtype=torch.long)], 1),
                fut_ts=torch.cat([b["fut_ts"], torch.zeros(len(out), 3, dtype=torch.long)], 1),
            )
        )
        timeless = build("dmr", SPEC, dataclasses.replace(SIZES, time_attention=False), content()).eval()
        same = timeless(dict(b, ts=b["ts"] + 10**8))
        assert torch.equal(timeless(b), same)  # without time attention the gaps mean nothing
    assert not torch.allclose(out[has_fut], other_future[has_fut]) and torch.equal(
        out[~has_fut], other_future[~has_fut]
    )
    assert not torch.allclose(out[has_hist | has_fut], later[has_hist | has_fut])
    assert torch.allclose(out, padded, atol=1e-6)


def planted(n: int, seed: int) -> dict[str, torch.Tensor]:
    """Clicks decided by the future alone: the target's group (items 1-6 or 7-12) is the neighbours' trend."""
    g = torch.Generator().manual_seed(seed)
    b = batch(seed)
    b = {k: v[torch.randint(0, len(v), (n,), generator=g)] if k != "label" else v for k, v in b.items()}
    group = torch.randint(0, 2, (n,), generator=g)
    b["fut"] = 1 + 6 * group[:, None] + torch.randint(0, 6, (n, 4), generator=g)
    b["fut_ts"] = b["ts"][:, None] - torch.randint(1, 10**5, (n, 4), generator=g).sort(1, descending=True).values
    b["label"] = ((b["item"] - 1) // 6 == group).float()
    return b


def test_dmr_learns_a_trend_that_only_the_future_carries():
    train, test = planted(320, 1), planted(200, 2)
    scores = {}
    for use_future in (True, False):
        torch.manual_seed(0)
        model = build("dmr", SPEC, dataclasses.replace(SIZES, use_future=use_future), None)
        opt = torch.optim.Adam(model.parameters(), lr=0.02)
        for _ in range(50):
            loss = torch.nn.functional.binary_cross_entropy_with_logits(model(train), train["label"])
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            scores[use_future] = auc(test["label"].numpy(), model.eval()(test).numpy())
    assert scores[True] > 0.9 and scores[False] < 0.65, scores

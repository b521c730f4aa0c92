"""The shared/private losses: zero on identical inputs, positive otherwise; the hinge is bounded."""

from __future__ import annotations

import pytest
import torch

from models.classify.losses import difference_loss, difference_penalty, kl_rows, similarity_loss


@pytest.mark.parametrize("loss", [similarity_loss, difference_loss])
def test_zero_on_identical_inputs_positive_otherwise(loss):
    torch.manual_seed(0)
    a = torch.randn(6, 5)
    assert loss(a, a.clone()).item() == pytest.approx(0.0, abs=1e-7)
    b = a.clone()
    b[0, 0] += 1.0
    assert loss(a, b).item() > 0


def test_similarity_is_the_mean_squared_distance():
    a, b = torch.zeros(2, 3), torch.tensor([[1.0, 2.0, 2.0], [0.0, 0.0, 1.0]])
    assert similarity_loss(a, b).item() == pytest.approx((9 + 1) / 2)


def test_difference_is_kl_of_the_softmaxes():
    p, q = torch.tensor([[0.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    sq = torch.softmax(q, -1)[0]
    expected = 0.5 * torch.log(0.5 / sq[0]) + 0.5 * torch.log(0.5 / sq[1])
    assert kl_rows(p, q).item() == pytest.approx(expected.item(), rel=1e-5)


def test_difference_penalty_pushes_apart_up_to_the_margin_only():
    a = torch.randn(4, 5)
    assert difference_penalty(a, a, 0.5).item() == pytest.approx(0.5)
    far = torch.zeros(4, 5)
    far[:, 0] = 20.0
    assert difference_penalty(far, torch.zeros(4, 5), 0.5).item() == 0.0
    private = a.clone().requires_grad_(True)
    difference_penalty(private, torch.zeros(4, 5), 0.5).backward()
    with torch.no_grad():  # a step along -grad moves the private code away from the shared one
        moved = private - 0.1 * private.grad
    assert difference_loss(moved, torch.zeros(4, 5)) > difference_loss(a, torch.zeros(4, 5))

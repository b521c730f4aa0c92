"""The training loops' Adam equals ``torch.optim.Adam`` bit for bit, without importing torch._dynamo."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from pipeline.core.adam import Adam, ParamGroup


def _params(seed: int) -> list[torch.nn.Parameter]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.nn.Parameter(torch.randn(shape, generator=gen)) for shape in ((7, 5), (5,), (3, 2))]


def _train(make, steps: int = 12) -> list[torch.Tensor]:
    """Two groups with their own learning rates; the last parameter gets a gradient from step 5 on."""
    params = _params(0)
    opt = make(params)
    gen = torch.Generator().manual_seed(1)
    for t in range(steps):
        x = torch.randn(4, 7, generator=gen)
        loss = ((x @ params[0] + params[1]) ** 2).mean()
        if t >= 4:
            loss = loss + params[2].pow(3).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return [p.detach().clone() for p in params]


@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize("weight_decay", [0.0, 1e-3])
def test_updates_equal_torch_optim_adam_bit_for_bit(fused: bool, weight_decay: float) -> None:
    ours = _train(
        lambda ps: Adam(
            [ParamGroup.of(ps[:2], 1e-2), ParamGroup.of(ps[2:], 3e-3)], weight_decay=weight_decay, fused=fused
        )
    )
    theirs = _train(
        lambda ps: torch.optim.Adam(
            [{"params": ps[:2], "lr": 1e-2}, {"params": ps[2:], "lr": 3e-3}], weight_decay=weight_decay, fused=fused
        )
    )
    start = _params(0)
    for a, b, p0 in zip(ours, theirs, start, strict=True):
        assert not torch.equal(a, p0)  # every parameter moved
        assert torch.equal(a, b)


def test_a_parameter_without_gradient_keeps_its_value_and_gets_no_state() -> None:
    used, unused = torch.nn.Parameter(torch.ones(3)), torch.nn.Parameter(torch.full((2,), 5.0))
    opt = Adam([ParamGroup.of([used, unused], 0.1)])
    used.sum().backward()
    opt.step()
    assert torch.equal(unused.detach(), torch.full((2,), 5.0)) and unused not in opt.state
    assert torch.allclose(used.detach(), torch.full((3,), 0.9))  # Adam's first step moves by lr
    assert opt.state[used].step.item() == 1.0


def test_a_parameter_in_two_groups_is_refused() -> None:
    p = torch.nn.Parameter(torch.zeros(1))
    with pytest.raises(ValueError, match="more than one Adam group"):
        Adam([ParamGroup.of([p], 0.1), ParamGroup.of([p], 0.2)])


def test_a_training_step_does_not_import_torch_dynamo() -> None:
    code = (
        "import sys, torch\n"
        "from pipeline.core.adam import Adam, ParamGroup\n"
        "p = torch.nn.Parameter(torch.ones(2))\n"
        "for fused in (False, True):\n"
        "    opt = Adam([ParamGroup.of([p], 0.1)], fused=fused)\n"
        "    p.sum().backward(); opt.step(); opt.zero_grad()\n"
        "print('torch._dynamo' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"

"""Adam for the training loops, without ``torch.optim``.

``torch.optim``'s ``Optimizer`` wraps ``step``, ``zero_grad`` and ``state_dict`` so that they import
``torch._dynamo`` on first call. On a 2-core CPU that import costs 1.3 s idle and 2-4 s under load: as
much as importing torch itself, in every training stage (``rec_train``, ``ctr_train``, ``classify``)
that never compiles anything.

This is the same algorithm with the same float operations in the same order, so a run's numbers do not
move: without ``fused``, torch's single-tensor path (what ``torch.optim.Adam`` picks for CPU tensors);
with ``fused``, torch's fused kernel ``torch._fused_adam_`` (what ``torch.optim.Adam(fused=True)``
calls). ``tests/pipeline/core/test_adam.py`` holds both to ``torch.optim.Adam`` bit for bit.

As in torch, a parameter is stepped only once it has a gradient, and its state starts then: parameters a
model does not use yet (the content branch of a staged recommender) keep their init and no moments.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class ParamGroup:
    """Parameters that share a learning rate."""

    params: tuple[torch.Tensor, ...]
    lr: float

    @classmethod
    def of(cls, params: Iterable[torch.Tensor], lr: float) -> ParamGroup:
        return cls(tuple(params), float(lr))


@dataclass
class _Moments:
    step: torch.Tensor  # float32 like torch's, so the fused kernel can count in place
    exp_avg: torch.Tensor
    exp_avg_sq: torch.Tensor


class Adam:
    """Adam (L2 ``weight_decay`` added to the gradient, as ``torch.optim.Adam``; no AMSGrad)."""

    def __init__(
        self,
        groups: Sequence[ParamGroup],
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        fused: bool = False,
    ):
        seen: set[torch.Tensor] = set()
        for group in groups:
            for p in group.params:
                if p in seen:
                    raise ValueError("a parameter appears in more than one Adam group")
                seen.add(p)
        self.groups = tuple(groups)
        self.beta1, self.beta2 = betas
        self.eps, self.weight_decay, self.fused = eps, weight_decay, fused
        self.state: dict[torch.Tensor, _Moments] = {}

    def zero_grad(self) -> None:
        """Drop the gradients (``torch.optim``'s ``set_to_none=True``, what every loop asked for)."""
        for group in self.groups:
            for p in group.params:
                p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        for group in self.groups:
            params = [p for p in group.params if p.grad is not None]
            if not params:
                continue
            moments = [self._moments(p) for p in params]
            if self.fused:
                self._fused(group.lr, params, moments)
            else:
                for p, m in zip(params, moments, strict=True):
                    self._single(group.lr, p, m)

    def _moments(self, p: torch.Tensor) -> _Moments:
        if p.grad.is_sparse:
            raise RuntimeError("Adam does not support sparse gradients")
        if p not in self.state:
            device = p.device if self.fused else torch.device("cpu")
            self.state[p] = _Moments(
                torch.zeros((), dtype=torch.float32, device=device),
                torch.zeros_like(p, memory_format=torch.preserve_format),
                torch.zeros_like(p, memory_format=torch.preserve_format),
            )
        return self.state[p]

    def _single(self, lr: float, p: torch.Tensor, m: _Moments) -> None:
        # torch.optim.adam._single_tensor_adam, non-capturable branch, operation for operation
        m.step += 1
        grad = p.grad
        if self.weight_decay != 0:
            grad = grad.add(p, alpha=self.weight_decay)
        m.exp_avg.lerp_(grad, 1 - self.beta1)
        m.exp_avg_sq.mul_(self.beta2).addcmul_(grad, grad, value=1 - self.beta2)
        step = m.step.item()
        bias_correction1 = 1 - self.beta1**step
        bias_correction2 = 1 - self.beta2**step
        step_size = lr / bias_correction1
        denom = (m.exp_avg_sq.sqrt() / bias_correction2**0.5).add_(self.eps)
        p.addcdiv_(m.exp_avg, denom, value=-step_size)

    def _fused(self, lr: float, params: list[torch.Tensor], moments: list[_Moments]) -> None:
        # torch.optim.adam._fused_adam: one kernel per (device, dtype)
        by_kind: dict[tuple[torch.device, torch.dtype], list[int]] = {}
        for k, p in enumerate(params):
            by_kind.setdefault((p.device, p.dtype), []).append(k)
        for ks in by_kind.values():
            steps = [moments[k].step for k in ks]
            torch._foreach_add_(steps, 1)
            torch._fused_adam_(
                [params[k] for k in ks],
                [params[k].grad for k in ks],
                [moments[k].exp_avg for k in ks],
                [moments[k].exp_avg_sq for k in ks],
                [],
                steps,
                amsgrad=False,
                lr=lr,
                beta1=self.beta1,
                beta2=self.beta2,
                weight_decay=self.weight_decay,
                eps=self.eps,
                maximize=False,
                grad_scale=None,
                found_inf=None,
            )

"""The shared/private losses: similarity of shared codes, difference of private and shared codes.

Both functions are zero when their two inputs are identical and positive otherwise. The
training objective uses ``difference_penalty``: *minimising* a KL divergence would pull the
private and shared codes together, the opposite of what the difference loss is for, and
maximising it is unbounded (codes could grow without limit). A hinge ``relu(margin - KL)``
pushes each pair apart until their KL reaches ``margin``, then stops.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


def similarity_loss(shared_a: torch.Tensor, shared_b: torch.Tensor) -> torch.Tensor:
    """Mean squared (Euclidean) distance between two modalities' shared codes ``(B, D)``."""
    return (shared_a - shared_b).pow(2).sum(dim=-1).mean()


def kl_rows(private: torch.Tensor, shared: torch.Tensor) -> torch.Tensor:
    """KL(softmax(private) || softmax(shared)) per row, ``(B, D)`` -> ``(B,)``."""
    log_p, log_q = F.log_softmax(private, dim=-1), F.log_softmax(shared, dim=-1)
    return (log_p.exp() * (log_p - log_q)).sum(dim=-1).clamp(min=0.0)  # clamp: float round-off only


def difference_loss(private: torch.Tensor, shared: torch.Tensor) -> torch.Tensor:
    """The paper's difference loss: mean KL divergence between softmax(private) and softmax(shared)."""
    return kl_rows(private, shared).mean()


def difference_penalty(private: torch.Tensor, shared: torch.Tensor, margin: float) -> torch.Tensor:
    """What training minimises: ``relu(margin - KL)`` per row, averaged (bounded, zero once apart)."""
    return torch.relu(margin - kl_rows(private, shared)).mean()

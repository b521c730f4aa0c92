"""Early stopping shared by the training loops (CTR, classifier): keep the best epoch's weights."""

from __future__ import annotations

import copy
from typing import Any

from torch import nn


class EarlyStopping:
    """Remembers the model state at the best score seen; ``step`` says when to stop.

    Scores compare with ``>`` (tuples work: ties on the first element fall to the second).
    The initial state is kept too, so ``restore`` is valid even if no epoch ever improved.
    """

    def __init__(self, model: nn.Module, patience: int, initial: Any):
        self.model, self.patience = model, patience
        self.best, self.best_epoch, self.wait = initial, 0, 0
        self.state = copy.deepcopy(model.state_dict())

    def step(self, score: Any, epoch: int) -> bool:
        """Record this epoch's score; True once ``patience`` epochs in a row brought no better one."""
        if score > self.best:
            self.best, self.best_epoch, self.wait = score, epoch, 0
            self.state = copy.deepcopy(self.model.state_dict())
            return False
        self.wait += 1
        return self.wait >= self.patience

    def restore(self) -> None:
        self.model.load_state_dict(self.state)

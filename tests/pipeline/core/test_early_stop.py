import torch
from torch import nn

from pipeline.core.early_stop import EarlyStopping


def test_keeps_best_state_and_stops_after_patience():
    model = nn.Linear(1, 1, bias=False)
    stopper = EarlyStopping(model, patience=2, initial=float("-inf"))
    stops = []
    for epoch, score in enumerate([0.1, 0.5, 0.4, 0.3], start=1):
        model.weight.data.fill_(float(epoch))
        stops.append(stopper.step(score, epoch))
    assert stops == [False, False, False, True]
    assert stopper.best_epoch == 2
    stopper.restore()
    assert model.weight.item() == 2.0


def test_tuple_scores_break_ties_and_restore_initial_state_without_improvement():
    model = nn.Linear(1, 1, bias=False)
    model.weight.data.fill_(7.0)
    stopper = EarlyStopping(model, patience=1, initial=(0.5, -1.0))
    model.weight.data.fill_(1.0)
    assert stopper.step((0.5, -2.0), 1) is True  # same first element, worse second: no improvement
    stopper.restore()
    assert torch.equal(model.weight, torch.full((1, 1), 7.0))
    stopper = EarlyStopping(model, patience=1, initial=(0.5, -1.0))
    assert stopper.step((0.5, -0.5), 1) is False and stopper.best_epoch == 1

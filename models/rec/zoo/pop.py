"""``pop``: every user gets the items ranked by their number of training interactions (no training)."""

from __future__ import annotations

import torch

from models.rec import MODELS
from models.rec.base import Content, Graph, RecModel, RecSizes


@MODELS.register("pop")
class Pop(RecModel):
    trainable = False

    def __init__(self, sizes: RecSizes, graph: Graph, content: Content | None):
        super().__init__(sizes, graph, content)
        self.register_buffer("counts", torch.bincount(graph.items, minlength=sizes.n_items).float())

    def scores(self, users: torch.Tensor) -> torch.Tensor:
        return self.counts.expand(users.shape[0], -1)

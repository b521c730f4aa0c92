"""The classifier assembled from its parts: one branch per modality, optional shared/private
encoders, a fusion and an MLP head.

A branch standardises its input with statistics fitted on the training split (buffers, so a
checkpoint carries them), encodes it -- a sequence ``(B, T, D)`` per step then through an
aggregation, a vector ``(B, D)`` or a backbone's clip features directly -- to ``(B, H)``.
Rows whose modality is absent are replaced by zeros *before* encoding (so junk or NaN never
reaches a gradient) and masked after it: their codes reach neither the fusion nor the losses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from models.classify import build_aggregation, build_fusion
from models.layers import MLP

Batch = dict[str, torch.Tensor]  # "<modality>" inputs, "<modality>_mask" (B,) bool, "label" (B,)


@dataclass(frozen=True)
class BranchSpec:
    modality: str  # visual | audio
    kind: Literal["sequence", "vector", "frames"]  # frames: a fine-tuned backbone on decoded frames
    shape: tuple[int, ...]  # one video's input: (T, D), (D,) or (T, S, S, 3)
    aggregation: str  # sequences only


@dataclass(frozen=True)
class ModelSpec:
    branches: tuple[BranchSpec, ...]
    classes: tuple[str, ...]
    hidden: int
    clusters: int
    fusion: str
    shared_private: bool
    dropout: float


@dataclass
class Output:
    logits: torch.Tensor  # (B, n_classes)
    private: dict[str, torch.Tensor]  # modality -> (B, H), empty without shared/private
    shared: dict[str, torch.Tensor]
    masks: dict[str, torch.Tensor]  # modality -> (B,) bool


class Branch(nn.Module):
    def __init__(self, spec: BranchSpec, hidden: int, clusters: int, dropout: float, backbone: nn.Module | None = None):
        super().__init__()
        self.spec = spec
        self.backbone = backbone
        dim = spec.shape[-1] if spec.kind != "frames" else backbone.d_out
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))
        if spec.kind == "sequence":
            self.step = MLP(dim, (hidden,), 0.0, out=None)  # per step: (B, T, D) -> (B, T, H)
            self.aggregate = build_aggregation(spec.aggregation, hidden, clusters)
            # LayerNorm: a unit-norm NetVLAD vector has entries ~ 1/sqrt(K*H), too small to learn from quickly
            self.project = nn.Sequential(
                nn.LayerNorm(self.aggregate.d_out), MLP(self.aggregate.d_out, (hidden,), dropout, out=None)
            )
        else:
            self.project = MLP(dim, (hidden,), dropout, out=None)

    def set_normaliser(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.mean.copy_(mean)
        self.std.copy_(std)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        keep = mask.view(-1, *([1] * (x.dim() - 1)))  # (B, 1, ...)
        x = torch.where(keep, x, torch.zeros((), dtype=x.dtype))  # absent rows: no junk, no NaN
        if self.backbone is not None:
            x = self.backbone(x)  # (B, T, S, S, 3) uint8 -> (B, D)
        x = (x.float() - self.mean) / self.std
        if self.spec.kind == "sequence":
            x = self.aggregate(self.step(x))  # (B, T, H) -> (B, d_agg)
        return self.project(x)  # (B, H)


class Classifier(nn.Module):
    def __init__(self, spec: ModelSpec, backbone: nn.Module | None = None):
        super().__init__()
        self.spec = spec
        h = spec.hidden
        self.branches = nn.ModuleDict(
            {
                b.modality: Branch(b, h, spec.clusters, spec.dropout, backbone if b.kind == "frames" else None)
                for b in spec.branches
            }
        )
        names = list(self.branches)
        if spec.shared_private:
            # Linear codes: with a ReLU, the similarity loss drives the shared codes to the dead-zero
            # solution, and a modality whose private code also dies is lost to the classifier.
            self.private = nn.ModuleDict({m: nn.Linear(h, h) for m in names})
            self.shared = nn.ModuleDict({m: nn.Linear(h, h) for m in names})
        n_tokens = len(names) * (2 if spec.shared_private else 1)
        self.fusion = build_fusion(spec.fusion, n_tokens, h)
        self.head = MLP(self.fusion.d_out, (h,), spec.dropout, out=len(spec.classes))

    def forward(self, batch: Batch) -> Output:
        tokens, masks, private, shared = [], [], {}, {}
        out_masks = {m: batch[f"{m}_mask"] for m in self.branches}
        for m, branch in self.branches.items():
            code, mask = branch(batch[m], out_masks[m]), out_masks[m]
            if self.spec.shared_private:
                private[m], shared[m] = self.private[m](code), self.shared[m](code)
                tokens += [private[m], shared[m]]
                masks += [mask, mask]
            else:
                tokens.append(code)
                masks.append(mask)
        fused = self.fusion(torch.stack(tokens, dim=1), torch.stack(masks, dim=1))  # (B, M, H) -> (B, d_fused)
        return Output(self.head(fused), private, shared, out_masks)

"""Fine-tuning a 3D CNN end to end: one step on a tiny batch of frames moves the backbone and lowers the loss."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from models.classify.model import BranchSpec, ModelSpec
from pipeline.classify.train import build_classifier, load_checkpoint, objective, save_checkpoint, train_step
from pipeline.core.store import plain
from pipeline.params import load_params
from tests.conftest import ROOT


def test_one_step_changes_the_backbone_and_lowers_the_loss(tmp_path):
    from pipeline.classify.train import make_backbone

    visual = load_params(ROOT / "params.yaml").visual
    visual = dataclasses.replace(
        visual, sections={**visual.sections, "i3d": dataclasses.replace(visual.sections["i3d"], num_frames=4)}
    )
    torch.manual_seed(0)
    backbone = make_backbone("i3d", visual, num_frames=4)  # weights: random (offline)
    spec = ModelSpec((BranchSpec("visual", "frames", (4, 32, 32, 3), "mean"),), ("a", "b"), 8, 2, "concat", False, 0.0)
    model = build_classifier(spec, backbone)
    rng = np.random.default_rng(0)
    batch = {
        "visual": torch.from_numpy(rng.integers(0, 256, (2, 4, 32, 32, 3), dtype=np.uint8)),
        "visual_mask": torch.ones(2, dtype=torch.bool),
        "label": torch.tensor([0, 1]),
    }
    sp = load_params(ROOT / "params.yaml").classify.shared_private
    opt = torch.optim.SGD(model.parameters(), lr=1e-2)
    first = next(p for p in backbone.parameters() if p.dim() == 5).detach().clone()  # the first 3D conv
    model.train()
    before = objective(model(batch), batch["label"], sp)[0].item()
    train_step(model, opt, batch, sp)
    after = objective(model(batch), batch["label"], sp)[0].item()
    assert after < before
    assert not torch.equal(next(p for p in backbone.parameters() if p.dim() == 5), first)
    info = {"name": "i3d", "visual": plain(visual), "num_frames": 4}  # as stages/classify.py stores it
    save_checkpoint(tmp_path / "model.pt", model, info)
    model.eval()
    loaded = load_checkpoint(tmp_path / "model.pt")
    assert torch.allclose(loaded(batch).logits, model(batch).logits, atol=1e-5)

"""A modality is declared once: a toy extractor is one new module plus one params section, and after
`python -m pipeline.dag` it runs as its own DVC stage and through reduce into items.parquet."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from pipeline.core import store
from tests.stages.project import Project

TOY = '''
"""``toy``: the mean colour of a video's frames (3-d)."""
from __future__ import annotations

from dataclasses import dataclass

from pipeline.core.modality import ModalityReduceConfig
from pipeline.visual.extractor import Extractor, register


@dataclass(frozen=True)
class ToyConfig:
    weights: str  # random only: the model has no parameters
    scale: float  # multiplies the mean colour


@register("toy")
class MeanColour(Extractor):
    config = ToyConfig
    reduce_defaults = ModalityReduceConfig(n_components=None, norm="minmax")
    column = "toy_rgb"

    @classmethod
    def vector_column(cls, cfg):
        return cls.column

    def build(self):
        from torch import nn

        return nn.Identity()

    def preprocess(self, frames):
        return frames.float().div(255.0).mul(self.cfg.scale)  # (B, T, H, W, C)

    def head(self, model):
        from torch import nn

        class Mean(nn.Module):
            def forward(self, x):
                return x.mean(dim=(1, 2, 3))  # (B, C)

        return Mean()

    def aggregate(self, feats, batch):
        return {self.column: feats.float()}

    def dims(self):
        return {self.column: [3]}
'''


@pytest.mark.slow
def test_a_new_extractor_is_one_module_and_one_params_section(tmp_path):
    proj = Project(
        tmp_path,
        {
            "visual": {"extractors": ["toy"], "toy": {"weights": "random", "scale": 2.0}},
            "audio": {"feature_sets": ["mfcc"]},
        },
    )
    (tmp_path / "pipeline/visual/extractors/toy.py").write_text(TOY)
    before = set((tmp_path / "dvc.yaml").read_text().splitlines())
    gen = proj.run("-m", "pipeline.dag")
    assert gen.returncode == 0, gen.stderr
    dvc = yaml.safe_load((tmp_path / "dvc.yaml").read_text())["stages"]
    assert "pipeline/visual/extractors/toy.py" in dvc["visual"]["do"]["deps"]
    assert "${paths.visual_features}" in dvc["reduce"]["deps"]  # the folder of stores: reduce reads the toy's
    assert set((tmp_path / "dvc.yaml").read_text().splitlines()) != before

    done = proj.run("dvc", "repro", "reduce")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "visual@toy" in done.stdout

    feats = store.read_table(tmp_path / "features/stores/visual_toy.parquet")
    meta = store.read_meta(tmp_path / "features/stores/visual_toy.parquet")
    assert meta["extractor"] == "toy" and meta["params"]["scale"] == 2.0 and meta["dims"] == {"toy_rgb": [3]}
    x = store.vectors(feats.column("toy_rgb"))
    assert x.shape == (feats.num_rows, 3) and np.all((x >= 0) & (x <= 2.0))  # mean colour in [0, 1] times scale

    items = store.read_table(tmp_path / "features/items.parquet")
    assert {"toy", "toy_present", "mfcc"} <= set(items.column_names)
    assert "resnet152" not in items.column_names
    toy = store.vectors(items.column("toy"))
    train = np.array(items.column("split").to_pylist()) == "train"
    assert toy.shape[1] == 3  # n_components: null from the toy's declared defaults: no PCA
    np.testing.assert_allclose(toy[train].min(axis=0), 0.0, atol=1e-6)  # minmax fitted on the training split
    np.testing.assert_allclose(toy[train].max(axis=0), 1.0, atol=1e-6)

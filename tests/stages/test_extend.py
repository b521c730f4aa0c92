"""Extending the DAG by params and one module, in one `dvc repro reduce` on the tiny corpus:

- a modality is declared once: a toy extractor is one new module plus one params section, and after
  `python -m pipeline.dag` it runs as its own DVC stage and through reduce into items.parquet;
- the flow stage, the flow stream (i3d_flow) and both joint features join the DAG by params alone.

Both are asserted on one project (``extended``): the sample, ingest, decode, audio and reduce stages they
share run once, not once per test (~25 s of the suite on two cores)."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from pipeline.core import store
from tests.stages.project import Project

pytestmark = pytest.mark.xdist_group("extended")  # one worker: ``extended`` runs once

# the default DAG's extractors replaced by the toy and those the flow and joint features need
PATCH = {
    "visual": {
        "extractors": ["toy", "scene", "i3d", "i3d_flow"],
        "batch_size": 4,
        "toy": {"weights": "random", "scale": 2.0},
        "scene": {"num_frames": 2},
        "i3d": {"num_frames": 4, "probs": True},
        "i3d_flow": {"num_frames": 4},
    },
    "joint": {"features": ["scene_action", "i3d_two_stream"], "scene_action": {"dim": 64, "seed": 0}},
    "audio": {"feature_sets": ["mfcc"]},
}

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


@pytest.fixture(scope="module")
def extended(tmp_path_factory):
    """The project after `python -m pipeline.dag` and `dvc repro reduce`: (project, dvc.yaml lines before
    the DAG was generated, the generator's result, the repro's result)."""
    root = tmp_path_factory.mktemp("extended")
    proj = Project(root, PATCH)
    (root / "pipeline/visual/extractors/toy.py").write_text(TOY)
    before = set((root / "dvc.yaml").read_text().splitlines())
    gen = proj.run("-m", "pipeline.dag")  # toy and i3d_flow listed: their stages and the flow stage join dvc.yaml
    done = proj.run("dvc", "repro", "reduce") if gen.returncode == 0 else None
    return proj, before, gen, done


@pytest.mark.slow
def test_a_new_extractor_is_one_module_and_one_params_section(extended):
    proj, before, gen, done = extended
    tmp_path = proj.root
    assert gen.returncode == 0, gen.stderr
    dvc = yaml.safe_load((tmp_path / "dvc.yaml").read_text())["stages"]
    assert "pipeline/visual/extractors/toy.py" in dvc["visual"]["do"]["deps"]
    assert "${paths.visual_features}" in dvc["reduce"]["deps"]  # the folder of stores: reduce reads the toy's
    assert set((tmp_path / "dvc.yaml").read_text().splitlines()) != before

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


@pytest.mark.slow
def test_flow_stream_and_joint_features_reach_reduce(extended):
    proj, _, gen, done = extended
    tmp_path = proj.root
    assert gen.returncode == 0, gen.stderr
    assert done.returncode == 0, done.stdout + done.stderr
    for stage in ("flow", "visual@i3d_flow", "joint@scene_action", "joint@i3d_two_stream"):
        assert f"Running stage '{stage}'" in done.stdout
    flow_meta = store.read_meta(tmp_path / "data/flow/index.parquet")
    assert flow_meta["stage"] == "flow" and flow_meta["dims"]["frames"] == [7, 32, 32, 2]
    joint = store.read_table(tmp_path / "features/joint/joint_scene_action.parquet")
    assert store.vectors(joint.column("scene_action")).shape == (joint.num_rows, 64) and joint.num_rows >= 7
    items = store.read_table(tmp_path / "features/items.parquet")
    assert {"scene", "i3d", "i3d_flow", "scene_action", "i3d_two_stream"} <= set(items.column_names)
    assert np.isfinite(store.vectors(items.column("i3d_two_stream"))).all()
    again = proj.run("dvc", "repro", "reduce")
    assert again.returncode == 0
    ran = [line for line in again.stdout.splitlines() if line.startswith("Running stage")]
    # ingest and placement always run (cheap); they change nothing, so no other stage follows
    assert ran == ["Running stage 'ingest':", "Running stage 'placement':"]

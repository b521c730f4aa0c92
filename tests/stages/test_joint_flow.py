"""End to end: the flow stage, the flow stream and both joint features in a `dvc repro` (tiny corpus)."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.core import store
from tests.stages.project import Project

PATCH = {
    "visual": {
        "extractors": ["scene", "i3d", "i3d_flow"],
        "batch_size": 4,
        "scene": {"num_frames": 2},
        "i3d": {"num_frames": 4, "probs": True},
        "i3d_flow": {"num_frames": 4},
    },
    "joint": {"features": ["scene_action", "i3d_two_stream"], "scene_action": {"dim": 64, "seed": 0}},
    "audio": {"feature_sets": ["mfcc"]},
}


@pytest.mark.slow
def test_flow_stream_and_joint_features_reach_reduce(tmp_path):
    proj = Project(tmp_path, PATCH)
    gen = proj.run("-m", "pipeline.dag")  # i3d_flow listed: the flow stage joins dvc.yaml
    assert gen.returncode == 0, gen.stderr
    done = proj.run("dvc", "repro", "reduce")
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

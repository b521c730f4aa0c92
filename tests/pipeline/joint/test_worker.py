"""The joint stage on tiny hand-made visual stores: values, failures, incremental reruns."""

from __future__ import annotations

import hashlib
from functools import partial

import numpy as np
import pyarrow.parquet as pq
import pytest

from pipeline.core import store
from pipeline.core.shards import ShardedStore
from pipeline.decode import decoded
from pipeline.execution import executors, runner
from pipeline.joint.feature import JOINTS, output_paths
from pipeline.joint.sketch import sketches, tensor_sketch
from pipeline.joint.worker import JointWorker, joint_meta, joint_stage, sources
from pipeline.visual.extractor import output_paths as visual_paths
from pipeline.visual.worker import encode, feature_schema
from tests.pipeline.visual.helpers import write_decoded

IDS = ["a", "b", "c", "d", "e"]


def fp(vid: str) -> str:
    return hashlib.sha256(vid.encode()).hexdigest()  # as write_decoded


def visual_store(folder, extractor: str, column: str, x: dict[str, np.ndarray], params=None) -> None:
    """A complete visual store of ``x`` (video_id -> vector), sharded as the decoded store (2 shards)."""
    dims = {column: [len(next(iter(x.values())))]}
    meta = store.make_meta(
        "visual", params=params or {"v": 1}, extractor=extractor, dims=dims, shards=2, decoded_params_hash="d"
    )
    schema = feature_schema(dims)
    path, failures = visual_paths(folder, extractor)
    sharded = ShardedStore(
        path, 2, schema, meta, stage="visual", failures_path=failures, encode=partial(encode, schema=schema)
    )
    plan = sharded.plan([{"video_id": v, "fingerprint": fp(v)} for v in x])
    sharded.write(plan, ({"video_id": r["video_id"], column: x[r["video_id"]], "padded": False} for r in plan.todo), {})


@pytest.fixture
def project(tmp_path):
    root = write_decoded(tmp_path / "decoded", [(v, np.zeros((2, 8, 8, 3), np.uint8), False) for v in IDS], 2, 8)
    rng = np.random.default_rng(0)
    scene = {v: rng.dirichlet(np.ones(7)).astype(np.float32) for v in IDS}
    action = {v: rng.dirichlet(np.ones(5)).astype(np.float32) for v in IDS if v != "c"}  # c failed in i3d
    visual_store(tmp_path / "stores", "scene", "scene_probs", scene)
    visual_store(tmp_path / "stores", "i3d", "i3d_probs", action)
    return tmp_path, root, scene, action


def run(tmp_path, root, dim=16):
    cls = JOINTS.get("scene_action")
    joint = cls(cls.config(dim=dim, seed=0))
    worker = JointWorker(joint, sources(joint, tmp_path / "stores"))
    meta = joint_meta(joint, worker.sources, decoded.read_meta(root))
    stage = joint_stage(worker, tmp_path / "joint", meta)
    return runner.run(stage, decoded.read_index(root).select(["video_id", "fingerprint"]).to_pylist(), executors.LOCAL)


def test_joint_store_holds_the_sketch_of_each_video(project):
    tmp_path, root, scene, action = project
    summary = run(tmp_path, root)
    assert summary.rows == 4 and [f.video_id for f in summary.failures] == ["c"]
    assert summary.failures[0].reason == "missing_input" and "i3d_probs" in summary.failures[0].message
    path = output_paths(tmp_path / "joint", "scene_action")[0]
    got = store.read_vectors(path, "scene_action", expect={"joint": "scene_action"})
    assert got.ids == ["a", "b", "d", "e"] and got.x.shape == (4, 16)
    cs, ca = sketches((7, 5), 16, 0)
    want = tensor_sketch(np.stack([scene[v] for v in got.ids]), np.stack([action[v] for v in got.ids]), cs, ca)
    np.testing.assert_allclose(got.x, want, rtol=1e-5, atol=1e-7)
    meta = store.read_meta(path)
    assert meta["dims"] == {"scene_action": [16]} and set(meta["params"]["inputs"]) == {"scene", "action"}
    failures = pq.read_table(output_paths(tmp_path / "joint", "scene_action")[1]).to_pylist()
    assert [(r["video_id"], r["reason"]) for r in failures] == [("c", "missing_input")]


def test_rerun_computes_only_the_missing_input_again(project):
    tmp_path, root, _, _ = project
    run(tmp_path, root)
    again = run(tmp_path, root)
    assert again.computed == 1 and again.rows == 4  # c is retried (its input may exist now); the rest is kept


def test_new_input_features_recompute_the_store(project):
    tmp_path, root, scene, _ = project
    run(tmp_path, root)
    visual_store(tmp_path / "stores", "scene", "scene_probs", scene, params={"v": 2})  # e.g. new scene weights
    assert run(tmp_path, root).computed == 5


def test_a_missing_input_store_is_a_clear_error(project):
    tmp_path, root, _, _ = project
    cls = JOINTS.get("i3d_two_stream")
    with pytest.raises(store.StoreError, match=r"visual_i3d.parquet: no column i3d_pool"):
        sources(cls(cls.config(output="pool")), tmp_path / "stores")
    import shutil

    shutil.rmtree(tmp_path / "stores" / "visual_i3d.parquet")
    with pytest.raises(store.StoreError, match=r"run visual@i3d first"):
        run(tmp_path, root)

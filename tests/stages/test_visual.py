"""Stage ``visual@<name>`` end to end on tiny decoded stores, and on the real clips (when present)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml

from pipeline.core import failures, store
from pipeline.decode.ffmpeg import MediaError, decode_clip, probe
from pipeline.execution.pools import bounded_map
from pipeline.params import load_params
from pipeline.visual import extractor as registry  # create, EXTRACTORS
from stages import visual as stage
from tests.pipeline.visual.helpers import REPO, random_frames, write_decoded

T, S = 8, 32
REAL = REPO.parent / "shared" / "data" / "videos"
DIMS = {
    "resnet152": {"resnet152_pool": 2048},
    "c3d": {"c3d_fc6": 4096},
    "i3d": {"i3d_pool": 2048, "i3d_probs": 400},
    "scene": {"scene_pool": 4096, "scene_probs": 365},
}
FROM_DECODED = [n for n in registry.EXTRACTORS.names() if registry.EXTRACTORS.get(n).source == "decoded"]


def use_params(tmp_path: Path, monkeypatch, decoded: Path, **sections) -> Path:
    """params.yaml pointed at ``decoded``; ``sections``: visual.<name> keys to change, e.g. ``i3d={"weights": p}``."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["paths"]["decoded"] = str(decoded)
    params["paths"]["visual_features"] = str(tmp_path / "features")
    params["visual"].update(batch_size=2, precision="fp32", device="cpu")
    params["visual"]["resnet152"]["keep_sequence"] = False  # the stores' base columns (params.yaml may keep sequences)
    for name, changes in sections.items():
        params["visual"][name].update(changes)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)
    return tmp_path / "features"


@pytest.mark.parametrize("name", FROM_DECODED)
def test_stage_writes_store_and_failures(name, tmp_path, monkeypatch):
    vids = [(f"v{i}", random_frames(i, T, S), i == 0) for i in range(3)] + [("broken", b"\x01\x02", False)]
    out = use_params(tmp_path, monkeypatch, write_decoded(tmp_path / "dec", vids, T, S))
    stage.main([name])
    table = store.read_table(out / f"visual_{name}.parquet")
    meta = store.read_meta(out / f"visual_{name}.parquet")
    assert sorted(table.column("video_id").to_pylist()) == ["v0", "v1", "v2"]
    for col, dim in DIMS[name].items():
        assert table.schema.field(col).type == store.vector_type(dim)
        assert np.isfinite(store.vectors(table.column(col))).all()
    assert dict(zip(table.column("video_id").to_pylist(), table.column("padded").to_pylist()))["v0"] is True
    assert (meta["extractor"], meta["weights"], meta["dims"], meta["precision"]) == (
        name,
        "random",
        {col: [dim] for col, dim in DIMS[name].items()},
        "fp32",
    )
    assert meta["params"]["weights"] == "random" and meta["params"]["input_frames"] == T
    fails = pq.read_table(out / f"visual_{name}_failures.parquet").to_pylist()
    assert [(f["video_id"], f["reason"]) for f in fails] == [("broken", "bad_frames")]


def test_stage_fails_loudly_past_max_failure_rate(tmp_path, monkeypatch):
    vids = [("ok", random_frames(0, T, S), False)] + [(f"bad{i}", b"x", False) for i in range(3)]
    out = use_params(tmp_path, monkeypatch, write_decoded(tmp_path / "dec", vids, T, S))
    with pytest.raises(failures.FailureRateExceeded, match="visual.max_failure_rate"):
        stage.main(["i3d"])
    assert len(pq.read_table(out / "visual_i3d_failures.parquet")) == 3  # written before failing


def test_weights_file_replaced_at_the_same_path_recomputes_every_video(tmp_path, monkeypatch):
    """`dvc repro -f visual@i3d` after overwriting the weights file: new features, not the old ones relabelled."""
    import hashlib

    import torch

    vids = [(f"v{i}", random_frames(i, T, S), False) for i in range(3)]
    path = tmp_path / "i3d.pth"
    out = use_params(tmp_path, monkeypatch, write_decoded(tmp_path / "dec", vids, T, S), i3d={"weights": str(path)})
    final = out / "visual_i3d.parquet"
    ex = registry.create("i3d", load_params().visual, T)

    def run(seed: int) -> np.ndarray:
        torch.manual_seed(seed)  # weights unlike the seeded `random` ones, and unlike the other seed's
        torch.save(ex.build().state_dict(), path)
        stage.main(["i3d"])
        sha = hashlib.sha256(path.read_bytes()).hexdigest()
        for shard in sorted(final.glob("shard-*.parquet")):
            assert store.read_meta(shard)["weights_sha256"] == sha
        return store.vectors(store.read_table(final).sort_by("video_id").column("i3d_pool"))

    first, second = run(1), run(2)
    assert first.shape == second.shape == (3, 2048)
    assert (np.linalg.norm(first - second, axis=1) > 1e-3 * np.linalg.norm(first, axis=1)).all()  # every video


@pytest.fixture(scope="module")
def real_store(tmp_path_factory):
    if not REAL.is_dir():
        pytest.skip(f"real clips not found at {REAL} (see shared/data/videos/SOURCES.md)")
    paths = sorted(p for p in REAL.iterdir() if p.suffix != ".md")

    def decode(path: Path):
        try:  # frames only: the audio stream is not needed here
            info = dataclasses.replace(probe(path), audio_stream=None)
            return path.stem, decode_clip(str(path), info, 4, "uniform", S, 16000)
        except MediaError:
            return path.stem, None

    clips = list(bounded_map(decode, paths, workers=2))
    videos = [(vid, c.frames, c.padded) for vid, c in clips if c is not None]
    assert len(videos) >= 10, f"only {len(videos)} of {len(paths)} real clips decoded"
    return write_decoded(tmp_path_factory.mktemp("real") / "dec", videos, 4, S, shards=3), [v[0] for v in videos]


# one xdist worker for every extractor: the real clips are decoded once (15 s), not once per worker
@pytest.mark.xdist_group("real_clips_visual")
@pytest.mark.parametrize("name", FROM_DECODED)
def test_real_clips_all_produce_rows(name, real_store, tmp_path, monkeypatch):
    root, ids = real_store
    out = use_params(tmp_path, monkeypatch, root)
    stage.main([name])
    table = store.read_table(out / f"visual_{name}.parquet")
    assert sorted(table.column("video_id").to_pylist()) == sorted(ids)
    assert np.isfinite(store.vectors(table.column(next(iter(DIMS[name]))))).all()


def test_flow_stream_stage_reads_the_flow_store(tmp_path, monkeypatch):
    from pipeline.flow.worker import compute_store

    vids = [(f"v{i}", random_frames(i, T, S), False) for i in range(2)]
    out = use_params(tmp_path, monkeypatch, write_decoded(tmp_path / "dec", vids, T, S), i3d_flow={"num_frames": 4})
    params = yaml.safe_load((tmp_path / "params.yaml").read_text())
    params["paths"]["flow"] = str(tmp_path / "flow")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(store.StoreError, match=r"no complete flow store \(paths.flow\).*python -m stages.flow"):
        stage.main(["i3d_flow"])
    compute_store(load_params().flow, tmp_path / "dec", tmp_path / "flow")
    stage.main(["i3d_flow"])
    meta = store.read_meta(out / "visual_i3d_flow.parquet")
    assert meta["dims"] == {"i3d_flow_pool": [2048]} and meta["params"]["input_frames"] == T - 1
    assert store.read_table(out / "visual_i3d_flow.parquet").num_rows == 2


@pytest.mark.parametrize(
    "device, precision, imports_torch", [("cpu", "fp32", False), ("cpu", "int8", False), ("auto", "auto", True)]
)
def test_placement_asks_torch_only_when_something_is_auto(device, precision, imports_torch, tmp_path):
    """`dvc repro` always runs placement: with nothing left to resolve it must not pay torch's import, and
    what auto meant on this machine is asked once, then remembered while the machine stays the same."""
    import subprocess
    import sys

    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["visual"] |= {"device": device, "precision": precision}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    output = tmp_path / raw["paths"]["placement"]
    memo = output.with_name(output.stem + ".machine.json")

    def placement() -> tuple[bool, dict]:
        code = "import sys; from stages import placement; placement.main(); print('torch' in sys.modules)"
        env = {"PYTHONPATH": str(REPO), "PATH": str(Path(sys.executable).parent)}
        done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip() == "True", json.loads(output.read_text())

    imported, record = placement()
    assert imported == imports_torch
    if not imports_torch:
        assert record == {"visual": {"device": "cpu", "precision": precision}} and not memo.exists()
        return
    # what auto means depends on the machine (bf16 units, a GPU)
    assert record["visual"]["device"] in ("cpu", "cuda") and record["visual"]["precision"] in ("fp32", "bf16")
    kept = json.loads(memo.read_text())
    assert kept["asked"] == {"device": "auto", "precision": "auto"} and kept["visual"] == record["visual"]
    assert placement() == (False, record)  # the same machine: the kept answer, no torch
    from stages.placement import remembered

    asked = {"device": "auto", "precision": "auto"}
    assert remembered(memo, kept["fingerprint"], asked) == record["visual"]
    # another machine (or torch build, GPU, driver), other params, no fingerprint: asked again
    assert remembered(memo, "another machine", asked) is None
    assert remembered(memo, kept["fingerprint"], asked | {"precision": "fp32"}) is None
    assert remembered(memo, None, asked) is None

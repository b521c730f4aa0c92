"""Stages on ``executor.kind: ray`` (one local Ray runtime for the module) equal ``kind: local``.

decode, visual@resnet152 (2 frames of 32 px) and audio run in-process (so the module's Ray runtime
is reused) on a tiny generated corpus with a video that ingest accepts but decode cannot read (it
is overwritten after ingest): it fails inside a Ray task and must land in the failures table with
the same reason as locally. A Ray worker killed mid-decode must not lose or repeat a row; two
decode processes on one store must leave it complete.
"""

from __future__ import annotations

import os
import re
import signal
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from pipeline.core import store
from pipeline.decode import decoded
from tests.stages.project import Project
from tests.stages.test_incremental import render

pytest.importorskip("ray")
psutil = pytest.importorskip("psutil")  # a Ray dependency

PATCH = {
    "audio": {"workers": 1, "feature_sets": ["mfcc"]},
    "visual": {"extractors": ["resnet152"], "batch_size": 2, "precision": "fp32", "resnet152": {"num_frames": 2}},
    "executor": {"num_cpus": 2, "max_retries": 3},
}
BROKEN = "broken"  # probed fine by ingest, then overwritten: decode fails in the worker


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Project:
    tmp = tmp_path_factory.mktemp("ray_stages")
    corpus = tmp / "corpus"
    paths = render(corpus, 5, seed=3)
    paths[0].rename(corpus / f"{BROKEN}.mp4")
    (corpus / "zero.mp4").write_bytes(b"")  # an ingest failure: never reaches an executor
    proj = Project(tmp / "project", {"data": {"input": str(corpus)}, **PATCH})
    done = proj.run("-m", "stages.ingest")
    assert done.returncode == 0, done.stderr
    (corpus / f"{BROKEN}.mp4").write_bytes(b"\0" * 4096)
    return proj


def configure(project: Project, kind: str, out: str) -> None:
    """The project's params with ``executor.kind`` and the stores under ``<out>/``."""
    project.set_params(
        {
            "executor": {"kind": kind},
            "paths": {
                "decoded": f"{out}/decoded",
                "visual_features": out,
                "audio_features": f"{out}/audio.parquet",
                "audio_failures": f"{out}/audio_failures.parquet",
            },
        }
    )


@contextmanager
def inside(project: Project, kind: str, out: str) -> Iterator[None]:
    """``configure``, then cwd = the project (for the stages' ``main`` run in this process)."""
    configure(project, kind, out)
    cwd = os.getcwd()
    os.chdir(project.root)  # relative store paths: the workers (other cwd) must get absolute ones
    try:
        yield
    finally:
        os.chdir(cwd)


def run_stages(project: Project, kind: str, out: str) -> None:
    from stages import audio, decode, visual

    with inside(project, kind, out):
        decode.main()
        visual.main(["resnet152"])
        audio.main()


@pytest.fixture(scope="module")
def local(project: Project) -> Path:
    run_stages(project, "local", "local")
    return project.root / "local"


def assert_same_table(a: pa.Table, b: pa.Table) -> None:
    """Same rows and ids exactly; vector columns within float tolerance."""
    a, b = (t.sort_by("video_id") for t in (a, b))
    assert a.schema.names == b.schema.names and a.num_rows == b.num_rows
    for name in a.schema.names:
        if pa.types.is_fixed_size_list(a.schema.field(name).type):
            np.testing.assert_allclose(store.vectors(a[name]), store.vectors(b[name]), rtol=1e-5, atol=1e-6)
        else:
            assert a[name].to_pylist() == b[name].to_pylist(), name


def assert_same_decoded(a: Path, b: Path) -> None:
    assert store.read_table(a / "index.parquet").equals(store.read_table(b / "index.parquet"))
    clips = {v.video_id: v for v in decoded.iter_decoded(a)}
    seen = []
    for video in decoded.iter_decoded(b):
        seen.append(video.video_id)
        np.testing.assert_array_equal(clips[video.video_id].frames, video.frames)
        assert (clips[video.video_id].audio is None) == (video.audio is None)
        if video.audio is not None:
            np.testing.assert_array_equal(clips[video.video_id].audio, video.audio)
    assert sorted(seen) == sorted(clips)  # each row exactly once
    assert store.read_table(a / "failures.parquet").equals(store.read_table(b / "failures.parquet"))


def test_ray_stages_equal_local(project, local, ray_runtime):
    run_stages(project, "ray", "ray")
    ray_out = project.root / "ray"
    assert_same_decoded(local / "decoded", ray_out / "decoded")
    fails = store.read_table(ray_out / "decoded" / "failures.parquet").to_pylist()
    assert [(f["video_id"], f["reason"]) for f in fails] == [(BROKEN, "decode_error")]
    assert len(decoded.read_index(ray_out / "decoded")) == 4
    for name in (
        "visual_resnet152.parquet",
        "visual_resnet152_failures.parquet",
        "audio.parquet",
        "audio_failures.parquet",
    ):
        a, b = store.read_table(local / name), store.read_table(ray_out / name)
        assert a.num_rows == (4 if "failures" not in name else 0), name
        assert_same_table(a, b)


def decode_actors() -> list[psutil.Process]:
    """The decode actor processes (Ray titles them after the job's worker class)."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        if any("Worker_decode" in part for part in proc.info["cmdline"] or ()):
            found.append(proc)
    return found


def test_killed_ray_worker_loses_and_repeats_no_row(project, local, ray_runtime, monkeypatch):
    from pipeline.execution import runner
    from stages import decode

    killed: list[int] = []

    def kill_after_first(results, *args, **kwargs):
        for i, row in enumerate(results):
            if i == 0:  # mid-run: the other videos' batches are in flight or queued on the actors
                killed.extend(proc.pid for proc in decode_actors())
                assert killed, "no decode actor process found"
                for pid in killed:
                    with suppress(ProcessLookupError):  # an actor of a finished pool may exit meanwhile
                        os.kill(pid, signal.SIGKILL)
            yield row

    monkeypatch.setattr(runner, "progress", kill_after_first)  # the per-video runner streams the results
    with inside(project, "ray", "killed"):
        try:
            decode.main()
        except Exception as err:  # noqa: BLE001 -- failing cleanly is allowed; the re-run must complete
            print(f"run with a killed worker failed: {err!r}", file=sys.stderr)
            monkeypatch.undo()
            decode.main()
    assert killed
    assert_same_decoded(local / "decoded", project.root / "killed" / "decoded")


def test_two_concurrent_decode_runs_leave_one_complete_store(project, local):
    """Two ``python -m stages.decode`` on one store: the store lock serialises them, the second reuses all."""
    configure(project, "local", "concurrent")
    with ThreadPoolExecutor(2) as pool:
        runs = list(pool.map(lambda _: project.run("-m", "stages.decode"), range(2)))
    assert [r.returncode for r in runs] == [0, 0], [r.stderr[-2000:] for r in runs]
    todo = sorted(int(re.search(r"decode: (\d+) of 5 videos to compute", r.stderr).group(1)) for r in runs)
    assert todo == [0, 5]
    assert_same_decoded(local / "decoded", project.root / "concurrent" / "decoded")

"""Bad manifests and interaction logs stop their stage with one error line naming the file, the row and
the column, exit status 1 and no traceback (before: pyarrow tracebacks, an OverflowError in
pipeline/ctr/data.py, or an empty label shown as -9223372036854775808)."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.media_fixtures import make_clip
from tests.stages.project import Project

LOG = "user_id,video_id,timestamp,label\n"


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    proj = Project(tmp_path_factory.mktemp("tables") / "proj", {"ctr_data": {"features": {"numeric": []}}})
    (proj.root / "in").mkdir()
    return proj


def one_error(done) -> str:
    """The single logged error line; fails on a traceback, a second error or a zero exit status."""
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    errors = [line for line in done.stderr.splitlines() if " ERROR: " in line]
    assert len(errors) == 1, done.stderr
    return errors[0].split(" ERROR: ", 1)[1]


def write(path, content: str | pa.Table) -> None:
    for old in path.parent.glob("manifest.*"):
        old.unlink()
    if isinstance(content, pa.Table):
        pq.write_table(content, path)
    else:
        path.write_text(content)


MANIFESTS = [
    ("manifest.csv", "", "line 1: the file is empty (zero bytes); expected a header with the columns video_id,path"),
    ("manifest.csv", "video_id,path,label\n", "line 2: no data rows, only the header (video_id,path,label)"),
    ("manifest.csv", "video_id,path\na,a.mp4\n,b.mp4\n", "line 3 column 'video_id': empty"),
    ("manifest.csv", "video_id,path\na,a.mp4\nb,  \n", "line 3 column 'path': empty"),
    (
        "manifest.csv",
        "video_id,path,split\na,a.mp4,dev\n",
        "line 2 column 'split': 'dev' (a); valid: train, valid, test",
    ),
    ("manifest.csv", "video_id,path\na,a.mp4\nb,b.mp4,extra\n", "not a CSV file this stage can read"),
    (
        "manifest.csv",
        "video_id,path\na,a.mp4\nb,../b.mp4\nc,/data/c.mp4\n",
        "line 3 column 'path': '../b.mp4' leaves the manifest's folder",
    ),
    ("manifest.parquet", "", "line 1: the file is empty (zero bytes)"),
    (
        "manifest.parquet",
        pa.table({"video_id": pa.array([], pa.string()), "path": pa.array([], pa.string())}),
        "row 1: no data rows, only the header (video_id,path)",
    ),
    (
        "manifest.parquet",
        pa.table({"video_id": ["a", None], "path": ["a.mp4", "b.mp4"]}),
        "row 2 column 'video_id': empty",
    ),
]


@pytest.mark.parametrize("name, content, message", MANIFESTS, ids=[f"{m[0]}:{m[2][:30]}" for m in MANIFESTS])
def test_a_bad_manifest_is_one_error_line_naming_file_row_and_column(project, name, content, message):
    path = project.root / "in" / name
    write(path, content)
    project.set_params({"data": {"input": str(project.root / "in")}, "ingest": {"allow_outside_paths": False}})
    error = one_error(project.run_here("stages.ingest"))
    assert error.startswith(f"{path}: ") and message in error, error


def test_paths_outside_the_manifest_folder_are_read_when_allowed_and_counted(project, tmp_path):
    outside = make_clip(tmp_path / "elsewhere" / "b.mp4", audio_rate=None)
    make_clip(project.root / "in" / "a.mp4", audio_rate=None)
    write(project.root / "in" / "manifest.csv", f"video_id,path\na,a.mp4\nb,{outside}\n")
    project.set_params({"data": {"input": str(project.root / "in")}, "ingest": {"allow_outside_paths": True}})
    done = project.run_here("stages.ingest")
    assert done.returncode == 0, done.stderr
    assert "1 paths outside the manifest's folder (ingest.allow_outside_paths)" in done.stderr
    manifest = pq.read_table(project.root / "data/ingest/manifest.parquet").to_pylist()
    assert {r["video_id"]: r["path"] for r in manifest} == {"a": str(project.root / "in" / "a.mp4"), "b": str(outside)}


LOGS = [
    ("log.csv", "", "line 1: the file is empty (zero bytes); expected a header with the columns user_id,video_id"),
    ("log.csv", LOG, "line 2: no data rows, only the header (user_id,video_id,timestamp,label)"),
    ("log.csv", LOG + "u1,v1,10,1\nu1,v2,NaN,0\n", "line 3 column 'timestamp': 'NaN' is not a finite number"),
    ("log.csv", LOG + "u1,v1,10,1\nu1,v2,yesterday,0\n", "line 3 column 'timestamp': 'yesterday' is not a number"),
    ("log.csv", LOG + "u1,v1,10,1\nu1,v2,,0\nu2,v1,,1\n", "line 3 column 'timestamp': empty (2 rows like this)"),
    ("log.csv", LOG + "u1,v1,10,1\nu1,v2,10.5,0\n", "line 3 column 'timestamp': '10.5' is not a whole number"),
    ("log.csv", LOG + "u1,v1,10,1\nu1,v2,11,0.5\n", "line 3 column 'label': '0.5' is not 0 or 1"),
    ("log.csv", LOG + "u1,v1,10,1\nu1,v2,11,\n", "line 3 column 'label': empty"),
    ("log.csv", LOG + "u1,v1,10,1\nu1,v2,11,2\n", "line 3 column 'label': '2' is not 0 or 1"),
    ("log.csv", LOG + "u1,v1,10,1\n,v2,11,0\n", "line 3 column 'user_id': empty"),
    ("log.parquet", "", "line 1: the file is empty (zero bytes)"),
    (
        "log.parquet",
        pa.table({"user_id": ["u1", "u1"], "video_id": ["v1", "v2"], "timestamp": [10.0, float("nan")]}),
        "row 2 column 'timestamp': nan is not a finite number",
    ),
    (
        "log.parquet",
        pa.table({"user_id": ["u1"] * 3, "video_id": ["v1"] * 3, "timestamp": [1, 2, 3], "label": [1, None, 0]}),
        "row 2 column 'label': empty",
    ),
    (
        "log.parquet",
        pa.table({"user_id": ["u1", "u1"], "video_id": ["v1", "v2"], "timestamp": [1, 2], "label": [1.0, 0.25]}),
        "row 2 column 'label': 0.25 is not 0 or 1",
    ),
]


@pytest.mark.parametrize("name, content, message", LOGS, ids=[f"{m[0]}:{m[2][:30]}" for m in LOGS])
def test_a_bad_interaction_log_is_one_error_line_naming_file_row_and_column(project, name, content, message):
    path = project.root / name
    path.unlink(missing_ok=True)
    if isinstance(content, pa.Table):
        pq.write_table(content, path)
    else:
        path.write_text(content)
    project.set_params({"ctr_data": {"path": str(path)}})  # the log file alone is the source
    error = one_error(project.run_here("stages.ctr_data"))
    assert error.startswith(f"{path}: ") and message in error, error
    project.set_params({"data": {"interactions": str(path)}})  # the same error where the pipeline exports it
    error = one_error(project.run_here("stages.log_data"))
    assert error.startswith(f"{path}: ") and message in error, error

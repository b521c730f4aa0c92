"""``python -m pipeline.show``: ``--outputs`` (an output no stage writes with these params is not "missing")
and ``--experiment`` (an experiment's headline metrics, read from its commit)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.params import load_params
from pipeline.show import experiment, headlines, outputs, written_paths

ROOT = Path(__file__).resolve().parents[2]


def test_outputs_of_stages_outside_the_dag_are_not_called_missing(tmp_path, monkeypatch):
    params = load_params(ROOT / "params.yaml")
    written = written_paths(params)
    assert {"manifest", "decoded", "visual_features", "items", "rec_metrics", "ctr_plots"} <= written
    assert "flow" not in written  # the default extractors read no optical flow (issue 26: it said "missing")
    monkeypatch.chdir(tmp_path)  # nothing computed here
    lines = {line.split()[0]: line for line in outputs(str(ROOT / "params.yaml")).splitlines()[1:-1]}
    assert lines["flow"].endswith("not in the pipeline (no stage writes it with these params)")
    assert lines["items"].endswith(" missing")


CTR = {"model": "deepfm", "valid": {"auc": 0.864, "epoch": 11}, "auc": 0.8664, "gauc": 0.8695, "cold_auc": 0.8961}


def test_headlines_put_validation_before_test_and_skip_what_did_not_run():
    classify = {"valid": {"accuracy": 0.9167}, "test": {"accuracy": 0.8333, "macro_f1": 0.8}}
    reduce = {"n_videos": 64, "c3d": {"explained_variance": 0.95, "n_components": 39}}
    lines = headlines({"ctr_metrics": CTR, "rec_metrics": None, "classify_live": classify, "reduce_metrics": reduce})
    assert lines == [
        "ctr_train (deepfm): valid AUC 0.8640, test AUC 0.8664, GAUC 0.8695, cold-start AUC 0.8961",
        "classify: valid accuracy 0.9167, test accuracy 0.8333, macro F1 0.8000",
        "reduce: explained variance c3d 0.950 (39 dims)",
    ]
    assert headlines({"ctr_metrics": None}) == ["no metrics file in this revision"]
    # a tiny corpus: one class in the test split (null AUC), no labelled test video (no test block)
    tiny = headlines({"ctr_metrics": {**CTR, "auc": None, "gauc": None}, "classify_live": {"valid": {"accuracy": 1.0}}})
    assert tiny == [
        "ctr_train (deepfm): valid AUC 0.8640, test AUC n/a, GAUC n/a, cold-start AUC 0.8961",
        "classify: valid accuracy 1.0000, test accuracy n/a, macro F1 n/a",
    ]


def test_an_experiments_metrics_are_read_from_its_commit_not_the_working_tree(tmp_path, monkeypatch):
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=tmp_path, check=True)
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics/ctr.json").write_text(json.dumps(CTR))
    subprocess.run([*git, "add", "-A"], cwd=tmp_path, check=True)
    subprocess.run([*git, "commit", "-qm", "run"], cwd=tmp_path, check=True)
    (tmp_path / "metrics/ctr.json").write_text(json.dumps({**CTR, "auc": 0.5}))  # the workspace moved on
    monkeypatch.chdir(tmp_path)
    shown = experiment("HEAD", str(ROOT / "params.yaml")).splitlines()
    assert shown == ["experiment HEAD:", "  " + headlines({"ctr_metrics": CTR})[0]]
    with pytest.raises(SystemExit, match="'nosuch' is neither an experiment nor a git revision"):
        experiment("nosuch", str(ROOT / "params.yaml"))

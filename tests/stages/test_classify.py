"""The classify stage in a throw-away project on a synthetic corpus: through DVC, then its bad inputs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pipeline.classify.train import load_checkpoint
from pipeline.core import store
from tests.pipeline.classify.fixtures import corpus, write_stores
from tests.stages.project import Project

PATCH = {"classify": {"hidden": 16, "epochs": 15, "patience": 15, "lr": 0.01, "clusters": 2}}
LIVE = "metrics/classify"


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    proj = Project(tmp_path_factory.mktemp("classify"), PATCH)
    c = corpus()
    labels = [None if i == 4 else lab for i, lab in enumerate(c["label"])]
    write_stores(proj.root, c, labels)
    return proj


def test_dvc_repro_classify_writes_metrics_plots_checkpoint_and_predictions(project):
    done = project.run("dvc", "repro", "--single-item", "classify")
    assert done.returncode == 0, done.stdout + done.stderr
    metrics = json.loads((project.root / LIVE / "metrics.json").read_text())
    test = metrics["test"]
    assert {"accuracy", "macro_precision", "macro_recall", "macro_f1"} <= set(test)
    assert set(test["per_class"]) == {"cool_noise", "cool_tone", "warm_noise", "warm_tone"}
    assert metrics["n_missing_labels"] == 1 and metrics["epochs"] >= 1 and metrics["train_seconds"] >= 0
    preds = store.read_table(project.root / "models_out/classify_predictions.parquet", expect={"stage": "classify"})
    assert preds.num_rows == metrics["n_test"] and "prob_warm_tone" in preds.column_names
    probs = np.stack([preds.column(f"prob_{c}").to_numpy() for c in test["per_class"]], 1)
    assert np.allclose(probs.sum(1), 1, atol=1e-5)
    assert np.mean(np.array(preds.column("label")) == np.array(preds.column("predicted"))) == pytest.approx(
        test["accuracy"]
    )
    cm = json.loads((project.root / LIVE / "plots/sklearn/confusion_matrix.json").read_text())
    assert len(cm) == metrics["n_test"] and {"actual", "predicted"} <= set(cm[0])
    curve = (project.root / LIVE / "plots/metrics/train/loss.tsv").read_text().splitlines()
    assert len(curve) == 1 + metrics["epochs"]
    model = load_checkpoint(project.root / "models_out/classify/model.pt")
    assert model.spec.classes == tuple(sorted(test["per_class"])) and not (project.root / "dvclive").exists()
    shown = project.run("dvc", "metrics", "show")
    assert "test.accuracy" in shown.stdout and "n_missing_labels" in shown.stdout
    plots = project.run("dvc", "plots", "show", "--json")
    assert plots.returncode == 0 and "confusion_matrix.json" in plots.stdout and "train/loss.tsv" in plots.stdout


def test_a_single_class_fails_with_a_clear_message(project):
    c = corpus()
    write_stores(project.root, c, ["warm_tone"] * len(c["label"]))
    done = project.run_here("stages.classify")
    write_stores(project.root, c)
    assert done.returncode == 1 and "a classifier needs at least two" in done.stderr


def test_an_unknown_fusion_fails_listing_the_valid_ones(project):
    project.set_params({"classify": {"fusion": "sum"}})
    done = project.run_here("stages.classify")
    project.set_params({"classify": {"fusion": "attention"}})
    assert (
        done.returncode == 1 and "unknown fusion 'sum' in classify.fusion; registered: attention, concat" in done.stderr
    )
    assert "Traceback" not in done.stderr

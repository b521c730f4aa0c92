"""ctr_data + ctr_train run as stage modules in a throw-away project (no videos needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.core import store
from pipeline.ctr.train import load_checkpoint
from tests.pipeline.ctr.fixtures import ingest_manifest, planted_log, synthetic_items, write_ml100k
from tests.stages.project import Project

PATCH = {
    "ctr_data": {"features": {"categorical": [], "multi": [], "numeric": []}, "negatives": 2, "history": 5},
    "ctr": {
        "model": "deepfm",
        "use_content": True,
        "content": ["resnet152", "mfcc"],
        "epochs": 6,
        "patience": 3,
        "batch_size": 128,
        "embed_dim": 8,
        "mlp": [16],
        "lr": 0.01,
    },
}


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    proj = Project(tmp_path_factory.mktemp("ctr"), PATCH)
    planted_log(proj.root / "data" / "sample")
    manifest = proj.root / "data" / "sample" / "videos" / "manifest.csv"
    synthetic_items(manifest, proj.root / "features" / "items.parquet")
    ingest_manifest(manifest, proj.root / "data" / "ingest" / "manifest.parquet")
    for stage in ("stages.log_data", "stages.ctr_data"):  # the video pipeline's log and features -> samples
        done = proj.run_here(stage)
        assert done.returncode == 0, done.stderr
    return proj


def test_ctr_data_writes_time_ordered_splits(project):
    root = project.root / "data" / "ctr"
    summary = json.loads((root / "summary.json").read_text())
    assert summary["explicit_labels"] and summary["users"] == 80 and summary["test_cold_samples"] > 0
    train, test = (store.read_table(root / f"{s}.parquet", expect={"stage": "ctr_data"}) for s in ("train", "test"))
    assert train.num_rows + summary["valid_samples"] + test.num_rows == 80 * 25
    assert max(train["timestamp"].to_pylist()) <= min(test["timestamp"].to_pylist())


def test_ctr_train_with_content_beats_chance_on_cold_items(project):
    done = project.run_here("stages.ctr_train")
    assert done.returncode == 0, done.stderr
    metrics = json.loads((project.root / "metrics" / "ctr.json").read_text())
    assert {"auc", "logloss", "accuracy", "gauc", "cold_auc"} <= set(metrics)
    assert metrics["model"] == "deepfm" and metrics["use_content"] is True
    assert metrics["cold_auc"] > 0.7 and metrics["auc"] > 0.7  # the planted preference is visual
    model, blob = load_checkpoint(project.root / "models_out" / "ctr" / "model.pt")
    assert blob["model"] == "deepfm" and model.content is not None
    preds = store.read_table(project.root / "models_out" / "ctr" / "predictions.parquet")
    assert preds.num_rows == metrics["samples"]
    roc = (project.root / "plots" / "ctr" / "roc.csv").read_text().splitlines()
    assert roc[0] == "fpr,tpr" and roc[-1] == "1.0000,1.0000"
    curve = (project.root / "plots" / "ctr" / "training.csv").read_text().splitlines()
    assert len(curve) == 1 + metrics["epochs_run"]


def test_ctr_train_mmie_without_content(project):
    project.set_params({"ctr": {"model": "mmie", "use_content": False, "epochs": 2}})
    done = project.run_here("stages.ctr_train")
    assert done.returncode == 0, done.stderr
    metrics = json.loads((project.root / "metrics" / "ctr.json").read_text())
    assert metrics["model"] == "mmie" and metrics["use_content"] is False and metrics["epochs_run"] <= 2


def test_ctr_train_sdin_with_content_and_sessions(project):
    # the planted log spans 1000 s: 60-s gaps give each history several sessions
    sessions = {"gap_s": 60, "length": 3, "count": 4}
    patch = {"model": "sdin", "use_content": True, "epochs": 5, "monitor": "logloss", "sessions": sessions}
    project.set_params({"ctr": patch})
    done = project.run_here("stages.ctr_train")
    project.set_params({"ctr": {"model": "deepfm", "monitor": "auc"}})
    assert done.returncode == 0, done.stderr
    metrics = json.loads((project.root / "metrics" / "ctr.json").read_text())
    assert metrics["model"] == "sdin" and metrics["epochs_run"] <= 5 and metrics["auc"] > 0.75
    assert metrics["cold_pairs"] > 0 and metrics["cold_auc"] > 0.7  # cold items: the unseen row plus content
    groups = metrics["history_auc"]
    assert sum(g["samples"] for g in groups.values()) == metrics["samples"] and groups["<=10"]["samples"] > 0
    model, blob = load_checkpoint(project.root / "models_out" / "ctr" / "model.pt")
    assert blob["model"] == "sdin" and blob["config"]["sessions"] == sessions and not model.seen.all()


def test_ctr_train_dmr_with_its_future_sequence(project):
    """dmr through the stage: the user network and future sequences built from the training split, trained,
    checkpointed with its trend params (the planted log: 80 users, 25 impressions each over 1000 s)."""
    trends = {"count": 2, "routing_iterations": 3, "neighbours": 5, "future": 6, "use_future": True}
    project.set_params({"ctr": {"model": "dmr", "use_content": True, "epochs": 3, "trends": trends}})
    done = project.run_here("stages.ctr_train")
    project.set_params({"ctr": {"model": "deepfm"}})
    assert done.returncode == 0, done.stderr
    metrics = json.loads((project.root / "metrics" / "ctr.json").read_text())
    assert metrics["model"] == "dmr" and metrics["auc"] > 0.75 and metrics["cold_auc"] > 0.7
    model, blob = load_checkpoint(project.root / "models_out" / "ctr" / "model.pt")
    assert blob["config"]["trends"]["count"] == 2 and len(model.routing) == 2 and model.routing[1].count == 2


def test_unknown_model_fails_with_the_registry(project):
    project.set_params({"ctr": {"model": "nope"}})
    done = project.run_here("stages.ctr_train")
    project.set_params({"ctr": {"model": "deepfm"}})
    assert done.returncode == 1 and "amfr, deepfm, din, dmr, fm, frame, lr, mmie, sdin" in done.stderr


def test_movielens_source_without_video_content(tmp_path):
    proj = Project(
        tmp_path,
        {
            "ctr_data": {
                "source": "movielens",
                "path": "ml",
                "label": {"positive_min": 4, "negative_max": None},
                "features": {"categorical": ["gender", "occupation"], "multi": ["genres"], "numeric": ["age"]},
            },
            "ctr": {"model": "din", "use_content": False, "epochs": 2, "batch_size": 64},
        },
    )
    write_ml100k(tmp_path / "ml")
    done = proj.run_here("stages.ctr_data")
    assert done.returncode == 0, done.stderr
    summary = json.loads((tmp_path / "data" / "ctr" / "summary.json").read_text())
    assert not summary["explicit_labels"] and summary["spec"]["multi"] == {"genres": 20}
    done = proj.run_here("stages.ctr_train")
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "metrics" / "ctr.json").read_text())["model"] == "din"
    proj.set_params({"ctr_data": {"path": "nowhere"}})
    done = proj.run_here("stages.ctr_data")
    assert done.returncode == 1 and "u.data" in done.stderr


def write_lattice_from(data, folder: Path) -> Path:
    """A synthetic dataset in the LATTICE layout (split matrices + ``*_feat.npy``)."""
    import pickle

    import numpy as np
    import scipy.sparse as sp

    folder.mkdir(parents=True, exist_ok=True)
    shape = (int(data.user.max()) + 1, len(data.cold))
    for k, name in enumerate(("trnMat.pkl", "valMat.pkl", "tstMat.pkl")):
        keep = data.split == k
        m = sp.coo_matrix((np.ones(int(keep.sum())), (data.user[keep], data.item[keep])), shape=shape)
        (folder / name).write_bytes(pickle.dumps(m.tocsr()))
    for modality, x in data.features.items():
        np.save(folder / f"{modality}_feat.npy", x)
    return folder


@pytest.mark.slow
def test_dvc_exp_run_ctr_train_on_a_dataset_with_its_own_features_by_params_alone(tmp_path):
    """Issue 24: from the default params (source log, the video pipeline), one `dvc exp run` with -S only,
    per layout: no video stage runs, the dataset's own *_feat.npy reach ctr_train, metrics carry valid and
    cold_auc."""
    import dataclasses

    from pipeline.params import load_params
    from pipeline.rec import synthetic

    proj = Project(tmp_path / "p", {"ctr": {"epochs": 3, "patience": 2, "embed_dim": 8, "mlp": [16]}})
    sample = load_params(proj.root / "params.yaml").rec_sample
    small = dataclasses.replace(sample.realistic, n_users=300, n_items=200, interactions_per_user=10)
    data = synthetic.realistic(small, 0)
    synthetic.write(data, tmp_path / "mmrec", "tiny")
    write_lattice_from(data, tmp_path / "lattice")
    proj.commit()
    for layout in ("lattice", "mmrec"):
        sets = {
            "ctr_data.source": layout,
            "ctr_data.path": str(tmp_path / layout),
            "ctr_data.features.categorical": "[]",
            "ctr_data.features.numeric": "[]",
            "ctr.content": "[]",
        }
        done = proj.run("dvc", "exp", "run", "ctr_train", *[a for k, v in sets.items() for a in ("-S", f"{k}={v}")])
        assert done.returncode == 0, done.stdout + done.stderr
        ran = {line.split("'")[1] for line in done.stdout.splitlines() if line.startswith("Running stage")}
        assert ran == {"ctr_data", "ctr_train"}, done.stdout  # no log_data, ingest, decode, reduce
        metrics = json.loads((proj.root / "metrics" / "ctr.json").read_text())
        assert metrics["use_content"] is True and metrics["cold_samples"] > 0
        assert (
            set(metrics["valid"]) == {"auc", "logloss", "epoch"} and metrics["valid"]["epoch"] == metrics["best_epoch"]
        )
        assert metrics["cold_pairs"] > 0 and 0.0 <= metrics["cold_auc"] <= 1.0  # its lift: bench/ctr_content.py
        model, _ = load_checkpoint(proj.root / "models_out" / "ctr" / "model.pt")
        assert model.content is not None and model.content.names == sorted(data.features)
        features = store.read_table(proj.root / "data" / "ctr" / "features.parquet", expect={"stage": "ctr_data"})
        assert set(data.features) <= set(features.column_names) and features.num_rows == 200

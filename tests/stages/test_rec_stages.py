"""The top-K stages in a throw-away project: bad input is one line; `dvc repro` / `dvc exp run` on the
synthetic and a LATTICE-format dataset with no video stage run and no hand edit of dvc.yaml."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.pipeline.datasets.test_adapters import write_lattice, write_mmrec
from tests.stages.project import Project

SMALL = {
    "rec_sample": {"realistic": {"n_users": 200, "n_items": 150, "interactions_per_user": 12, "dims": [8, 4]}},
    "rec": {"epochs": 3, "patience": 3, "warmup": 0, "eval_every": 1, "embed_dim": 16, "batch_size": 512, "lr": 0.01},
}


def test_rec_data_bad_features_are_one_line_naming_the_file(tmp_path):
    proj = Project(tmp_path / "p", SMALL)
    x = np.zeros((3, 2), np.float32)
    x[2, 0] = np.inf
    bad = write_mmrec(tmp_path / "bad", image=x)
    proj.set_params({"rec_data": {"path": str(bad)}})
    done = proj.run_here("stages.rec_data")
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if " ERROR: " in line]
    assert len(errors) == 1 and "image_feat.npy: 1 rows hold NaN or inf, e.g. row 2" in errors[0], done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.slow
def test_dvc_repro_and_exp_run_on_datasets_without_videos(tmp_path):
    proj = Project(tmp_path, SMALL)
    done = proj.run("dvc", "repro", "rec_train")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "rec_sample" in done.stdout and "decode" not in done.stdout and not (tmp_path / "data/decoded").exists()
    metrics = json.loads((tmp_path / "metrics/rec.json").read_text())
    assert metrics["model"] == "bpr_mf" and metrics["recall@20"] > 0 and metrics["cold"]["users"] > 0
    assert {"recall@20", "ndcg@20"} <= set(metrics["cold"]) and metrics["epochs"] == 3
    # experiments are compared on validation: the kept model's validation ranking, never the test's
    assert set(metrics["valid"]) == {"recall@20", "ndcg@20", "epoch"} and metrics["valid"]["recall@20"] > 0
    assert metrics["valid"]["epoch"] == metrics["best_epoch"] and metrics["cold_placement"] == {
        "spread": 0.0,
        "shift": 0.0,
        "slope": 0.0,
    }
    assert metrics["content"] is None  # an ID-only model has no content phase
    assert metrics["profile_weight"] == 0.0  # nor a content profile to blend in (params say 0.5)
    assert (tmp_path / "plots/rec/training.csv").read_text().startswith("epoch,train_loss,valid_recall@20")
    # the acceptance: an experiment is one command on a committed project
    proj.commit()
    # as `make demo` runs: in a temporary copy, the checkout untouched, the metrics read from the experiment
    done = proj.run("dvc", "exp", "run", "--temp", "--name", "demo", "rec_train", "-S", "rec.model=pop")
    assert done.returncode == 0, done.stdout + done.stderr
    assert proj.git_status() == "" and json.loads((tmp_path / "metrics/rec.json").read_text())["model"] == "bpr_mf"
    shown = proj.run("-m", "pipeline.show", "--experiment", "demo")
    assert shown.returncode == 0 and "  rec_train (pop): valid Recall@20 " in shown.stdout, shown.stderr
    done = proj.run("dvc", "exp", "run", "rec_train", "-S", "rec.model=pop")
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads((tmp_path / "metrics/rec.json").read_text())["model"] == "pop"
    # another format by params alone: dvc.yaml's rec_data dep is ${rec_data.path}
    lattice = write_lattice(tmp_path / "lattice", n_users=2, n_items=6, text=np.eye(6, 3, dtype=np.float32))
    proj.set_params({"rec_data": {"source": "lattice", "path": str(lattice)}})
    done = proj.run("dvc", "repro", "rec_train")
    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads((tmp_path / "data/rec/summary.json").read_text())
    assert summary["source"] == "lattice" and summary["items"] == 6 and summary["modalities"] == {"text": 3}


def test_the_video_pipelines_own_log_and_item_table(tmp_path):
    """source log: the interaction log's positives, the reduced item table as content; then rec_train."""
    from tests.pipeline.ctr.fixtures import ingest_manifest, planted_log, synthetic_items

    proj = Project(tmp_path, SMALL)
    planted_log(tmp_path / "data" / "sample")
    manifest = tmp_path / "data" / "sample" / "videos" / "manifest.csv"
    synthetic_items(manifest, tmp_path / "features" / "items.parquet")
    ingest_manifest(manifest, tmp_path / "data" / "ingest" / "manifest.parquet")
    proj.set_params({"rec_data": {"source": "log", "path": "data/log"}})  # stage log_data's folder
    for stage in ("stages.log_data", "stages.rec_data"):
        done = proj.run_here(stage)
        assert done.returncode == 0, done.stderr
    summary = json.loads((tmp_path / "data/rec/summary.json").read_text())
    assert summary["source"] == "log" and summary["items"] == 50 and summary["negatives_dropped"] > 0
    assert set(summary["modalities"]) >= {"resnet152", "mfcc"}
    done = proj.run_here("stages.rec_train")
    assert done.returncode == 0, done.stderr
    metrics = json.loads((tmp_path / "metrics/rec.json").read_text())
    assert metrics["users"] > 0 and "recall@20" in metrics["cold"]

"""``python -m pipeline.show --outputs``: an output no stage writes with these params is not "missing"."""

from __future__ import annotations

from pathlib import Path

from pipeline.params import load_params
from pipeline.show import outputs, written_paths

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

"""The ablation helpers: dvc exp run arguments, the table, the fusion margin, the README section."""

from __future__ import annotations

import pytest

from pipeline.classify.ablation import CONFIGS, END, START, fusion_margin, replace_section, set_args, table
from pipeline.core.config import flat_keys
from pipeline.params import Params


def run(acc: float, f1: float) -> dict:
    return {"test": {"accuracy": acc, "macro_f1": f1}, "epochs": 10, "train_seconds": 1.5}


def test_every_override_is_a_params_key():
    keys = set(flat_keys(Params))
    for overrides in CONFIGS.values():
        assert set(overrides) <= keys
    assert set_args({"classify.fusion": "concat"}) == ["-S", "classify.fusion=concat"]


def test_table_and_margin():
    runs = {
        "visual only": [run(0.5, 0.4), run(0.3, 0.2)],
        "audio only": [run(0.5, 0.3)],
        "concat fusion": [run(0.9, 0.9), run(0.7, 0.7)],
    }
    text = table(runs)
    assert "| visual only | 0.400 ± 0.100 | 0.300 ± 0.100 | 10 | 1.5 |" in text
    assert fusion_margin(runs) == pytest.approx(0.3)


def test_replace_section_keeps_the_rest():
    text = f"a\n{START}\nold\n{END}\nb\n"
    assert replace_section(text, "new") == f"a\n{START}\nnew\n{END}\nb\n"
    with pytest.raises(ValueError, match="ablation"):
        replace_section("no markers", "x")


def test_feature_rows_stay_outside_the_fusion_margin():
    runs = {
        "visual only": [run(0.5, 0.4)],
        "audio only": [run(0.4, 0.3)],
        "concat fusion": [run(0.7, 0.7)],
        "scene x action only": [run(0.1, 0.1)],  # an input, not a fusion: must not lower the margin
    }
    assert fusion_margin(runs) == pytest.approx(0.2)
    assert CONFIGS["scene x action only"]["classify.visual.vector"] == "scene_action"

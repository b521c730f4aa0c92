"""The classify ablation's configurations, its markdown table and the docs section it rewrites (docs/benchmarks.md).

``bench/classify_ablation.py`` runs each configuration through ``dvc exp run -S ...`` and hands the
per-seed metrics to ``table``; ``replace_section`` puts the table between the markers of docs/benchmarks.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

START, END = "<!-- ablation:start -->", "<!-- ablation:end -->"
SP_OFF = {"classify.shared_private.enabled": "false"}

# name -> params overrides (dvc exp run -S key=value); everything else comes from params.yaml
CONFIGS: dict[str, dict[str, str]] = {
    "visual only": {"classify.modalities": "[visual]", **SP_OFF},
    "audio only": {"classify.modalities": "[audio]", **SP_OFF},
    "concat fusion": {"classify.modalities": "[visual,audio]", "classify.fusion": "concat", **SP_OFF},
    "attention fusion": {"classify.modalities": "[visual,audio]", "classify.fusion": "attention", **SP_OFF},
    "attention fusion + shared/private": {
        "classify.modalities": "[visual,audio]",
        "classify.fusion": "attention",
        "classify.shared_private.enabled": "true",
    },
    # the visual branch fed one joint vector of items.parquet (joint features: docs/stages/joint.md)
    "scene x action only": {
        "classify.modalities": "[visual]",
        "classify.visual.input": "vector",
        "classify.visual.vector": "scene_action",
        "visual.extractors": "[resnet152,scene,i3d]",
        "joint.features": "[scene_action]",
        **SP_OFF,
    },
    # needs the flow stage in dvc.yaml: list i3d_flow in params.yaml's visual.extractors, python -m pipeline.dag
    "two-stream I3D only": {
        "classify.modalities": "[visual]",
        "classify.visual.input": "vector",
        "classify.visual.vector": "i3d_two_stream",
        "visual.extractors": "[resnet152,i3d,i3d_flow]",
        "joint.features": "[i3d_two_stream]",
        **SP_OFF,
    },
}
SINGLE = ("visual only", "audio only")
FEATURE_ROWS = ("scene x action only", "two-stream I3D only")  # other inputs, not fusions: outside the margin
NEEDS_FLOW = ("two-stream I3D only",)


def set_args(overrides: Mapping[str, str]) -> list[str]:
    return [arg for key, value in overrides.items() for arg in ("-S", f"{key}={value}")]


def mean_std(values: Sequence[float]) -> str:
    return f"{np.mean(values):.3f} ± {np.std(values):.3f}"


def table(runs: Mapping[str, Sequence[Mapping[str, Any]]]) -> str:
    """Markdown table of each configuration's runs (dvclive metrics.json dicts, one per seed)."""
    lines = ["| configuration | test accuracy | test macro-F1 | epochs | train s |", "|---|---|---|---|---|"]
    for name, rows in runs.items():
        acc, f1 = [r["test"]["accuracy"] for r in rows], [r["test"]["macro_f1"] for r in rows]
        lines.append(
            f"| {name} | {mean_std(acc)} | {mean_std(f1)} | {np.mean([r['epochs'] for r in rows]):.0f} "
            f"| {np.mean([r['train_seconds'] for r in rows]):.1f} |"
        )
    return "\n".join(lines)


def fusion_margin(runs: Mapping[str, Sequence[Mapping[str, Any]]]) -> float:
    """Mean test accuracy of the worst fusion configuration minus that of the best single modality."""
    mean = {name: float(np.mean([r["test"]["accuracy"] for r in rows])) for name, rows in runs.items()}
    fused = [v for k, v in mean.items() if k not in SINGLE and k not in FEATURE_ROWS]
    return min(fused) - max(mean[k] for k in SINGLE if k in mean)


def replace_section(text: str, body: str) -> str:
    """``text`` with everything between the ablation markers replaced by ``body``."""
    if START not in text or END not in text or text.index(START) > text.index(END):
        raise ValueError(f"the page has no '{START}' ... '{END}' section")
    head, rest = text.split(START, 1)
    return f"{head}{START}\n{body.strip()}\n{END}{rest.split(END, 1)[1]}"

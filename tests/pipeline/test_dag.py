"""pipeline.dag: dvc.yaml is generated and current, its code deps are the stages' import closures, and
the import graph has no cycle (registry plugin loading is not an import statement)."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline import dag
from pipeline.params import load_params
from tests.conftest import ROOT

DVC = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def test_dvc_yaml_is_what_the_generator_writes():
    assert (ROOT / "dvc.yaml").read_text() == dag.render(load_params(ROOT / "params.yaml")), (
        "dvc.yaml is stale: run `python -m pipeline.dag`"
    )


def _code_deps(stage: str) -> set[str]:
    spec = DVC[stage].get("do", DVC[stage])
    return {d for d in spec["deps"] if d.endswith(".py")}


# One process for every stage: it imports the heavy third-party packages once, then forks a child per stage
# that imports ``stages.<stage>`` and lists what is loaded. The project's own modules are loaded in the
# child alone, so each list is what that stage imports of the project, as in a fresh interpreter; a
# fresh interpreter per stage cost 1-5 s of torch, pyarrow and SciPy imports each.
_PROBE = """
import importlib, json, os, sys, traceback
for heavy in ("numpy", "pyarrow.dataset", "pyarrow.parquet", "torch", "torchvision", "scipy.signal"):
    importlib.import_module(heavy)
assert not [m for m in sys.modules if m.split(".")[0] in ("pipeline", "stages", "models", "registry")]
found = {}
for stage in sys.argv[1:]:
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            importlib.import_module("stages." + stage)
            out = sorted(getattr(m, "__file__", None) or "" for m in list(sys.modules.values()))
        except BaseException:
            out = {"error": traceback.format_exc()}
        with os.fdopen(w, "w") as f:
            f.write(json.dumps(out))
        os._exit(0)
    os.close(w)
    with os.fdopen(r) as f:
        found[stage] = json.loads(f.read())
    os.waitpid(pid, 0)
print(json.dumps(found))
"""


@pytest.fixture(scope="module")
def loaded_files() -> dict[str, set[str]]:
    """Stage -> the project's files that importing ``stages.<stage>`` loads (non-empty ones)."""
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, *sorted(DVC)], cwd=ROOT, capture_output=True, text=True, check=True, timeout=600
    )
    found = json.loads(done.stdout)
    errors = {stage: files["error"] for stage, files in found.items() if isinstance(files, dict)}
    assert not errors, errors
    return {
        stage: {
            str(p.relative_to(ROOT))
            for p in map(Path, files)
            if p.is_absolute() and ROOT in p.parents and p.stat().st_size > 0 and ".venv" not in p.parts
        }
        for stage, files in found.items()
    }


@pytest.mark.xdist_group("dag_imports")  # one worker, one probe
@pytest.mark.parametrize("stage", sorted(DVC))
def test_every_module_a_stage_loads_is_a_dep(stage, loaded_files):
    """What really gets imported (the stage's imports in a process of its own) is listed, and every listed
    file is reachable from the stage's module through import statements or its plugins."""
    deps = _code_deps(stage)
    assert loaded_files[stage] - deps == set(), f"{stage}: imported but not in dvc.yaml deps"
    assert deps == set(dag.import_closure(f"stages.{stage}", dag.PLUGINS.get(stage, ()))), stage


def test_a_file_the_stage_never_imports_is_not_a_dep():
    assert "pipeline/ctr/train.py" not in _code_deps("decode")
    assert "models/ctr/zoo/deepfm.py" in _code_deps("ctr_train") and "models/ctr/zoo/deepfm.py" not in _code_deps(
        "ingest"
    )
    assert "pipeline/visual/extractors/c3d.py" in _code_deps("visual")


def test_function_level_imports_count_and_type_checking_imports_do_not():
    assert "pipeline.execution.ray_executor" in dag.direct_imports("pipeline.execution.executors")  # in a function
    assert "pipeline.visual.extractor" not in dag.direct_imports("pipeline.joint.feature")  # under TYPE_CHECKING
    assert "pipeline.visual.extractor" in dag.direct_imports("pipeline.joint.feature", type_checking=True)


def test_the_core_knows_no_feature():
    """``pipeline.core`` imports nothing of the pipeline outside itself (issue 26: params.py used to import
    five families' registries, each importing its config class back)."""
    for path in sorted((ROOT / "pipeline" / "core").glob("*.py")):
        name = f"pipeline.core.{path.stem}".removesuffix(".__init__")
        outside = {m for m in dag.direct_imports(name, type_checking=True) if m.startswith("pipeline.")}
        assert {m for m in outside if not m.startswith("pipeline.core")} == set(), name


def test_the_import_graph_has_no_cycle():
    """No circle among the project's modules, counting imports under TYPE_CHECKING (a circle there is one in
    the design even though Python never runs it)."""
    modules = [
        str(p.relative_to(ROOT).with_suffix("")).replace("/", ".").removesuffix(".__init__")
        for top in ("pipeline", "stages", "models")
        for p in (ROOT / top).rglob("*.py")
    ] + ["registry"]
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(mod: str) -> None:
        state[mod] = 1
        path.append(mod)
        for dep in sorted(dag.direct_imports(mod, type_checking=True)):
            if state.get(dep) == 1:
                cycle = path[path.index(dep) :] + [dep]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if dep not in state:
                visit(dep)
        path.pop()
        state[mod] = 2

    for mod in sorted(modules):
        if mod not in state:
            visit(mod)


def test_ingest_never_makes_dvc_walk_the_input_folder(tmp_path):
    """DVC stops on an entry it cannot read (a symlink loop) if it hashes data.input: ingest runs every
    repro instead, after `sample` when the input is the sample corpus."""
    params = load_params(ROOT / "params.yaml")
    ingest = dag.stages(params)["ingest"]
    assert ingest["always_changed"] is True and "${data.input}" not in ingest["deps"]
    assert "${paths.sample}" in ingest["deps"]  # the default input lives in the sample corpus
    elsewhere = dataclasses.replace(params, data=dataclasses.replace(params.data, input=str(tmp_path)))
    assert [d for d in dag.stages(elsewhere)["ingest"]["deps"] if not d.endswith(".py")] == []


def test_the_data_stages_follow_their_path_param_whatever_the_source():
    """rec_data and ctr_data depend on ${rec_data.path} / ${ctr_data.path} alone, for every source (the video
    pipeline's log included: stage log_data's folder), so `dvc exp run -S <stage>.source=... -S
    <stage>.path=...` needs no new dvc.yaml, and the trainers depend on their data stage only (issue 24)."""
    params = load_params(ROOT / "params.yaml")
    for source in ("mmrec", "log", "lattice"):
        both = dataclasses.replace(
            params,
            rec_data=dataclasses.replace(params.rec_data, source=source),
            ctr_data=dataclasses.replace(params.ctr_data, source=source),
        )
        stages = dag.stages(both)
        assert stages == dag.stages(params)  # the DAG does not change with the source
        for name, path in (("rec_data", "${rec_data.path}"), ("ctr_data", "${ctr_data.path}")):
            assert [d for d in stages[name]["deps"] if not d.endswith(".py")] == [path]
    for name, data in (("rec_train", "${paths.rec_data}"), ("ctr_train", "${paths.ctr_data}")):
        assert [d for d in stages[name]["deps"] if not d.endswith(".py")] == [data]
    assert stages["log_data"]["outs"] == ["${paths.log_data}"] and params.ctr_data.path == params.paths.log_data
    assert "${paths.items}" in stages["log_data"]["deps"] and "${paths.rec_sample}" in stages["rec_sample"]["outs"]
    assert "pipeline/datasets/adapters/mmrec.py" in _code_deps("rec_data")
    assert "pipeline/datasets/adapters/lattice.py" in _code_deps("ctr_data")
    assert "models/rec/zoo/bpr_mf.py" in _code_deps("rec_train")


def test_flow_stage_exists_only_while_an_extractor_reads_flow():
    params = load_params(ROOT / "params.yaml")
    assert "flow" not in DVC and "${paths.flow}" not in DVC["visual"]["do"]["deps"]
    visual = dataclasses.replace(params.visual, extractors=(*params.visual.extractors, "i3d_flow"))
    stages = yaml.safe_load(dag.render(dataclasses.replace(params, visual=visual)))["stages"]
    assert stages["flow"]["outs"] == [{"${paths.flow}": {"persist": True}}]
    assert "pipeline/flow/optical.py" in stages["flow"]["deps"]
    assert set(stages["flow"]["params"]) == {"flow.method", "flow.bound", "flow.farneback", "flow.tvl1"}
    assert "${paths.flow}" in stages["visual"]["do"]["deps"]


def test_joint_stages_read_the_visual_stores_and_feed_reduce():
    joint = DVC["joint"]
    assert joint["foreach"] == "${joint.features}" and "${paths.visual_features}" in joint["do"]["deps"]
    assert "pipeline/joint/members/scene_action.py" in joint["do"]["deps"]
    assert "${paths.joint_features}" in DVC["reduce"]["deps"] and "joint.features" in DVC["reduce"]["params"]

"""pipeline.dag: dvc.yaml is generated and current, its code deps are the stages' import closures, and
the import graph has no cycle (registry plugin loading is not an import statement)."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

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


@pytest.mark.parametrize("stage", sorted(DVC))
def test_every_module_a_stage_loads_is_a_dep(stage):
    """What really gets imported (running the stage's imports in a fresh process) is listed, and every
    listed file is reachable from the stage's module through import statements or its plugins."""
    code = (
        f"import sys, json; import stages.{stage}; "
        "print(json.dumps(sorted(getattr(m, '__file__', None) or '' for m in list(sys.modules.values()))))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    loaded = {
        str(p.relative_to(ROOT))
        for p in map(__import__("pathlib").Path, json.loads(done.stdout))
        if p.is_absolute() and ROOT in p.parents and p.stat().st_size > 0 and ".venv" not in p.parts
    }
    deps = _code_deps(stage)
    assert loaded - deps == set(), f"{stage}: imported but not in dvc.yaml deps"
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

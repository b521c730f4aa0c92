"""``models/`` is a leaf (imports no ``pipeline`` module), and its registries list their members without torch."""

from __future__ import annotations

import ast
import subprocess
import sys

from tests.conftest import ROOT


def imported_modules(path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    out = set()
    for node in ast.walk(tree):  # every import, top-level, nested or under TYPE_CHECKING
        if isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module)
    return out


def test_models_imports_no_pipeline_module():
    files = sorted((ROOT / "models").rglob("*.py"))
    assert files
    bad = {
        str(p.relative_to(ROOT)): sorted(m for m in imported_modules(p) if m.split(".")[0] == "pipeline") for p in files
    }
    assert not {k: v for k, v in bad.items() if v}


def test_registry_names_need_no_torch():
    code = (
        "import sys; from models.ctr import MODELS; from models.classify import AGGREGATIONS, FUSIONS; "
        "from models.rec import MODELS as REC; "
        "names = MODELS.names(), AGGREGATIONS.names(), FUSIONS.names(), REC.names(); "
        "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')), all(names))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["[]", "True"], out.stdout + out.stderr


def test_rec_registry_lists_the_zoo_without_importing_it():
    code = (
        "import sys; from models.rec import MODELS; names = MODELS.names(); "
        "print(','.join(names), any(m == 'torch' or m.startswith(('torch.', 'torch_geometric')) for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    names, imported = out.stdout.split()
    expected = {"pop", "bpr_mf", "neumf", "lightgcn", "vbpr", "mmgcn", "metammf", "metammf_cp", "freedom"}
    assert expected <= set(names.split(",")) and imported == "False", out.stdout + out.stderr

"""Benchmark what a stage pays before its first video: the placement answer and a weights file's model.

    python bench/startup.py [--repeats 3]

(a) ``python -m stages.placement`` with ``visual.device`` and ``visual.precision`` at ``auto``, as every
    ``dvc repro`` on the default params runs it: asking torch (no ``data/placement.machine.json``) against
    the answer kept for this machine. Fresh processes, the two interleaved ``--repeats`` times.
(b) ``pipeline.visual.weights.load`` of a state-dict file for every extractor, in this process: the model
    built on the meta device and the file's tensors assigned (now), against built with its random init and
    then loaded (before). Interleaved ``--repeats`` times; one thread.
(c) A training stage's first optimiser step (``rec_train``, ``ctr_train``, ``classify``): a fresh process
    that imports torch and takes one Adam step with ``torch.optim.Adam`` (before: it imports
    ``torch._dynamo``) against ``pipeline.core.adam.Adam`` (now). Interleaved ``--repeats`` times.

Prints three markdown tables of medians (seconds) with the machine's CPU.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from report import cpu_name, usable_cores  # noqa: E402


def placement_rows(repeats: int) -> list[str]:
    import yaml

    work = Path(tempfile.mkdtemp(prefix="bench_startup_"))
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["visual"] |= {"device": "auto", "precision": "auto"}
    (work / "params.yaml").write_text(yaml.safe_dump(raw))
    output = work / raw["paths"]["placement"]
    memo = output.with_name(output.stem + ".machine.json")  # where stages/placement.py keeps its answer
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    times: dict[str, list[float]] = {"asks torch": [], "remembered": []}
    for _ in range(repeats):
        for case in times:
            if case == "asks torch":
                memo.unlink(missing_ok=True)
            start = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "stages.placement"], cwd=work, env=env, check=True, capture_output=True
            )
            times[case].append(time.perf_counter() - start)
    before, after = (statistics.median(times[c]) for c in times)
    return [
        "| `python -m stages.placement` (auto, auto) | asks torch (before) s | remembered (now) s | saved s |",
        "|---|---|---|---|",
        f"| one process | {before:.2f} | {after:.2f} | {before - after:.2f} |",
    ]


def weights_rows(repeats: int) -> list[str]:
    import torch

    from pipeline.visual import extractor as registry
    from pipeline.visual import weights
    from tests.pipeline.visual.helpers import visual_config

    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", category=FutureWarning)
    rows = [
        "| extractor | parameters (M) | random init, then load (before) s | meta build, assign (now) s | saved s |",
        "|---|---|---|---|---|",
    ]
    work = Path(tempfile.mkdtemp(prefix="bench_weights_"))
    for name in registry.EXTRACTORS.names():
        ex = registry.create(name, visual_config(), 8)
        model = ex.build()
        path = work / f"{name}.pt"
        torch.save(model.state_dict(), path)
        n_params = sum(p.numel() for p in model.parameters()) / 1e6
        del model
        state, _ = weights.read_state_dict(path, ex.weights_key)
        times: dict[str, list[float]] = {"before": [], "now": []}
        for _ in range(repeats):
            start = time.perf_counter()
            old = ex.build()  # what load did before: the random init, then the file's tensors copied in
            old.load_state_dict(state, strict=True)
            times["before"].append(time.perf_counter() - start)
            del old
            start = time.perf_counter()
            new = weights._built_from(ex, state, ex.weights_key, str(path))
            times["now"].append(time.perf_counter() - start)
            del new
        before, now = statistics.median(times["before"]), statistics.median(times["now"])
        rows.append(f"| {name} | {n_params:.0f} | {before:.2f} | {now:.2f} | {before - now:.2f} |")
        path.unlink()
    return rows


ADAM_STEP = {
    "before": "from torch.optim import Adam\nopt = Adam([p], lr=0.1)",
    "now": "from pipeline.core.adam import Adam, ParamGroup\nopt = Adam([ParamGroup.of([p], 0.1)])",
}


def optimiser_rows(repeats: int) -> list[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    times: dict[str, list[float]] = {case: [] for case in ADAM_STEP}
    for _ in range(repeats):
        for case, make in ADAM_STEP.items():
            code = f"import torch\np = torch.nn.Parameter(torch.ones(2))\n{make}\np.sum().backward()\nopt.step()"
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True)
            times[case].append(time.perf_counter() - start)
    before, now = (statistics.median(times[c]) for c in times)
    return [
        "| a fresh process: import torch, one Adam step | `torch.optim.Adam` (before) s | "
        "`pipeline.core.adam.Adam` (now) s | saved s |",
        "|---|---|---|---|",
        f"| one process | {before:.2f} | {now:.2f} | {before - now:.2f} |",
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    print(f"Machine: {cpu_name()}, {usable_cores()} CPUs; medians of {args.repeats} interleaved runs\n")
    print("\n".join(placement_rows(args.repeats)))
    print()
    print("\n".join(weights_rows(args.repeats)))
    print()
    print("\n".join(optimiser_rows(args.repeats)))


if __name__ == "__main__":
    main()

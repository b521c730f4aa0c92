"""Stage ``placement``: what this machine makes of ``visual.device`` and ``visual.precision``.

Reads params ``visual.device`` and ``visual.precision``; writes ``paths.placement`` (JSON: the device
type and the resolved precision). ``precision: auto`` means bf16 on a CPU or GPU with bf16 units and
fp32 elsewhere, and ``device: auto`` means CUDA when present, so the same params compute other features
on another machine. DVC runs this stage every time (``always_changed``); its file changes only when
the resolution does, and every ``visual@<name>`` stage depends on it: a machine that would compute other
features re-runs them (and the stores' reuse key, which holds the resolved precision, recomputes).

What ``auto`` meant is kept beside the output (``data/placement.machine.json``) under a fingerprint of the
machine (``pipeline.visual.machine``): while that matches, the stage answers without importing torch.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

from pipeline.core import store
from pipeline.core.cli import run_stage
from pipeline.core.config import ConfigError
from pipeline.params import load_params
from pipeline.visual import machine

log = logging.getLogger("stage.placement")


def remembered(path: Path, key: str | None, asked: dict[str, str]) -> dict[str, str] | None:
    """The answer kept at ``path`` for ``asked`` on the machine ``key`` names, or None."""
    if key is None:
        return None
    try:
        kept = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # none yet, or unreadable: ask torch (and write a good one)
        return None
    if not isinstance(kept, dict) or kept.get("fingerprint") != key or kept.get("asked") != asked:
        return None
    answer = kept.get("visual")
    return answer if isinstance(answer, dict) and set(answer) == {"device", "precision"} else None


def main() -> None:
    params = load_params()
    asked = {"device": params.visual.device, "precision": params.visual.precision}
    path = Path(params.paths.placement)
    memo = path.with_name(path.stem + ".machine.json")  # beside the output; not a DVC output itself
    how = ""
    if params.visual.device == "cpu" and params.visual.precision != "auto":
        # nothing to ask the machine: skip importing torch (~3 s of CPU on every `dvc repro`, which runs this)
        answer = dict(asked)
    elif (answer := remembered(memo, key := machine.fingerprint(), asked)) is not None:
        how = f" (remembered for this machine in {memo}: delete it to ask torch again)"
    else:
        from pipeline.visual.inference import resolve_precision

        resolved, precision = resolve_precision(params.visual)
        answer = {"device": resolved.type, "precision": precision}
        if key is not None:
            store.write_text(memo, json.dumps({"fingerprint": key, "asked": asked, "visual": answer}, indent=2) + "\n")
    record = {"visual": answer}
    text = json.dumps(record, indent=2, sort_keys=True) + "\n"
    try:
        unchanged = open(path, encoding="utf-8").read() == text
    except FileNotFoundError:
        unchanged = False
    if not unchanged:  # the same resolution keeps the file's bytes and mtime
        store.write_text(path, text)
    log.info(
        "visual.device=%s, visual.precision=%s -> %s, %s on this machine%s%s",
        params.visual.device,
        params.visual.precision,
        answer["device"],
        answer["precision"],
        how,
        "" if unchanged else f" (written to {path})",
    )


if __name__ == "__main__":
    sys.exit(run_stage(main, (ConfigError,)))

"""Stage ``placement``: what this machine makes of ``visual.device`` and ``visual.precision``.

Reads params ``visual.device`` and ``visual.precision``; writes ``paths.placement`` (JSON: the device
type and the resolved precision). ``precision: auto`` means bf16 on a CPU or GPU with bf16 units and
fp32 elsewhere, and ``device: auto`` means CUDA when present, so the same params compute other features
on another machine. DVC runs this stage every time (``always_changed``); its file changes only when
the resolution does, and every ``visual@<name>`` stage depends on it: a machine that would compute other
features re-runs them (and the stores' reuse key, which holds the resolved precision, recomputes).
"""

from __future__ import annotations

import json
import logging
import sys

from pipeline.core import store
from pipeline.core.cli import run_stage
from pipeline.core.config import ConfigError
from pipeline.params import load_params

log = logging.getLogger("stage.placement")


def main() -> None:
    params = load_params()
    if params.visual.device == "cpu" and params.visual.precision != "auto":
        # nothing to ask the machine: skip importing torch (~3 s of CPU on every `dvc repro`, which runs this)
        device, precision = params.visual.device, params.visual.precision
    else:
        from pipeline.visual.inference import resolve_precision

        resolved, precision = resolve_precision(params.visual)
        device = resolved.type
    record = {"visual": {"device": device, "precision": precision}}
    path = params.paths.placement
    text = json.dumps(record, indent=2, sort_keys=True) + "\n"
    try:
        unchanged = open(path, encoding="utf-8").read() == text
    except FileNotFoundError:
        unchanged = False
    if not unchanged:  # the same resolution keeps the file's bytes and mtime
        store.write_text(path, text)
    log.info(
        "visual.device=%s, visual.precision=%s -> %s, %s on this machine%s",
        params.visual.device,
        params.visual.precision,
        device,
        precision,
        "" if unchanged else f" (written to {path})",
    )


if __name__ == "__main__":
    sys.exit(run_stage(main, (ConfigError,)))

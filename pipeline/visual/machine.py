"""What this machine is, as far as ``visual.device`` / ``visual.precision: auto`` can tell, read without torch.

The ``placement`` stage runs on every ``dvc repro``. Asking torch what ``auto`` means costs its import
(3-5 s on a 2-core CPU, more with CUDA's initialisation), so the stage keeps its last answer beside its
output under a fingerprint of everything that answer depends on, and asks torch again when any of it
changes:

- the torch build (its version string names CPU-only, CUDA or ROCm wheels);
- the CPU (model and flags: AMX and AVX-512-BF16 are what make bf16 native);
- the GPUs a process can see: the visibility variables, the NVIDIA / ROCm device files, the NVIDIA
  driver's version and its list of GPUs (the model decides bf16 support).

Where one of these cannot be read (no ``/proc/cpuinfo``: not Linux), there is no fingerprint and the
stage asks torch every time, as before.
"""

from __future__ import annotations

import hashlib
import json
import os
from importlib import metadata
from pathlib import Path

VISIBILITY = ("CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES")


def _read(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return None


def _cpu(cpuinfo: str) -> dict[str, str]:
    """The first processor's model name and flags (every core of a machine reports the same)."""
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key in ("model name", "flags", "Features") and key not in fields:
            fields[key] = " ".join(sorted(value.split()))
    return fields


def fingerprint(root: Path = Path("/")) -> str | None:
    """A short hex digest of what the resolution of ``auto`` depends on, or None where it cannot be read.

    ``root`` is where ``/proc`` and ``/dev`` are looked up (a test points it at a fake tree)."""
    try:
        torch_version = metadata.version("torch")
    except metadata.PackageNotFoundError:
        return None
    cpuinfo = _read(root / "proc/cpuinfo")
    if not cpuinfo:
        return None
    dev = root / "dev"
    devices = (
        sorted(p.name for p in dev.iterdir() if p.name.startswith("nvidia") or p.name == "kfd") if dev.is_dir() else []
    )
    nvidia = root / "proc/driver/nvidia"
    gpus = sorted(nvidia.glob("gpus/*/information")) if nvidia.is_dir() else []
    parts = {
        "torch": torch_version,
        "cpu": _cpu(cpuinfo),
        "env": {name: os.environ.get(name) for name in VISIBILITY},
        "devices": devices,
        "driver": _read(nvidia / "version"),
        "gpus": {p.parent.name: _read(p) for p in gpus},
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]

"""Put weights into an extractor's model: ``random``, a named standard source, or a local file.

``random`` builds the architecture under a fixed seed (same weights every run) and says so:
the features are NOT pretrained. Named sources download once into the torch hub cache; offline
(or with a missing file) the error names the params key to change. A local file is a state
dict saved with ``torch.save`` (``.pt``/``.pth``/``.pyth``; ``{"state_dict": ...}`` or
``{"model_state": ...}`` wrappers and ``module.`` prefixes are accepted).

A file's identity is its content, not its path: ``WeightsInfo.sha256`` (of the very bytes loaded)
goes into the store's reuse key (``pipeline.core.shards.REUSE_KEYS``), so overwriting the file at
the same path recomputes every video. ``random`` needs no hash (the fixed seed is its identity)
and neither does a named source (the name pins one released file).
"""

from __future__ import annotations

import hashlib
import io
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.error import URLError

import torch
from torch import nn

from pipeline.visual.extractor import Extractor

RANDOM_SEED = 0
FILE_SUFFIXES = (".pt", ".pth", ".pyth", ".pkl", ".pickle", ".bin")
log = logging.getLogger("visual.weights")


class WeightsError(ValueError):
    """Weights that cannot be loaded; the message names the params key to change."""


@dataclass(frozen=True)
class WeightsInfo:
    """What was loaded, as the store metadata records it."""

    weights: str  # "random", a named source, or "file:<path>" -- goes into the store metadata
    detail: str  # for people: seed, source URL/enum, or the file's sha256
    sha256: str | None  # a file's content hash (part of the reuse key); None for random and named sources


@dataclass(frozen=True)
class LoadedWeights(WeightsInfo):
    model: nn.Module


def load(extractor: Extractor, spec: str, device: torch.device | str = "cpu") -> LoadedWeights:
    """Build ``extractor``'s model, load ``spec`` weights into it, move it to ``device`` in eval mode.

    The source is read before the model is built: a wrong path or name fails at once, not after the
    seconds a large model's random init takes."""
    key = extractor.weights_key
    state, sha256 = None, None
    if spec == "random":
        weights, detail = "random", f"random init (seed {RANDOM_SEED}): NOT pretrained, features carry no semantics"
    elif spec in extractor.named_weights:
        state = _download(extractor, spec)
        weights, detail = spec, f"standard {extractor.name} weights '{spec}' (torch hub cache {torch.hub.get_dir()})"
    elif spec in extractor.local_only_weights:
        raise WeightsError(f"{key}={spec}: {extractor.local_only_weights[spec]}; set {key} to that file's path")
    elif Path(spec).suffix in FILE_SUFFIXES or "/" in spec:
        path = Path(spec)
        state, sha256 = read_state_dict(path, key)
        weights, detail = f"file:{path}", f"state dict {path} (sha256 {sha256})"
    else:
        valid = ["random", *extractor.named_weights, *extractor.local_only_weights]
        raise WeightsError(
            f"{key}={spec!r} is not a weights source: use one of {valid} "
            f"or a path to a state dict ({'/'.join(FILE_SUFFIXES)})"
        )
    if state is None:
        model = _seeded_build(extractor)
    else:
        model = _built_from(extractor, state, key, spec)
    log.info("%s weights: %s", extractor.name, detail)
    model.eval().requires_grad_(False)
    return LoadedWeights(weights, detail, sha256, model.to(device))


def read_state_dict(path: Path, key: str) -> tuple[Mapping[str, torch.Tensor], str]:
    """The state dict in ``path`` and the sha256 of the bytes it was read from."""
    if not path.is_file():
        raise WeightsError(f"{key}: weights file {path} not found; fix the path or set {key}: random")
    # Read once, hash and load the same bytes: a file replaced meanwhile cannot be stored under
    # another file's hash (the state dict needs this memory anyway).
    try:
        blob = path.read_bytes()
        state = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
    except (RuntimeError, OSError, ValueError, EOFError) as err:
        raise WeightsError(f"{key}: cannot read {path} as a torch state dict ({err})") from err
    for wrapper in ("state_dict", "model_state", "model"):
        if isinstance(state, Mapping) and isinstance(state.get(wrapper), Mapping):
            state = state[wrapper]
    if not isinstance(state, Mapping):
        raise WeightsError(f"{key}: {path} holds a {type(state).__name__}, not a state dict")
    return {k.removeprefix("module."): v for k, v in state.items()}, hashlib.sha256(blob).hexdigest()


def _download(extractor: Extractor, spec: str) -> Mapping[str, torch.Tensor]:
    key = extractor.weights_key
    try:
        return extractor.named_weights[spec]()
    except (URLError, OSError, RuntimeError) as err:  # offline, blocked, or a truncated download
        raise WeightsError(
            f"{key}={spec}: cannot download the standard weights ({err}). Offline? Put the file in "
            f"{torch.hub.get_dir()}/checkpoints, set {key} to a local state-dict path, or set {key}: random"
        ) from err


def _built_from(extractor: Extractor, state: Mapping[str, torch.Tensor], key: str, spec: str) -> nn.Module:
    """The architecture with ``state``'s weights, built without the random init they replace (1-3 s of CPU
    for C3D or VGG16): on the meta device, then each tensor assigned from the state dict, cast to the
    model's dtype. An extractor whose model holds tensors a state dict cannot carry (non-persistent
    buffers) is built and initialised as usual, then loaded."""
    with torch.device("meta"):
        model = extractor.build()
    if _non_persistent_buffers(model):
        model = _seeded_build(extractor)  # seeded: a buffer the file cannot set is the same every run
        _load_into(model, state, key, spec)
        return model
    own = model.state_dict()
    cast = {k: v.to(own[k].dtype) if k in own and v.is_floating_point() else v for k, v in state.items()}
    _load_into(model, cast, key, spec, assign=True)
    return model


def _seeded_build(extractor: Extractor) -> nn.Module:
    with torch.random.fork_rng(devices=[]):  # seeded init without disturbing the caller's RNG
        torch.manual_seed(RANDOM_SEED)
        return extractor.build()


def _non_persistent_buffers(model: nn.Module) -> list[torch.Tensor]:
    return [
        buffer
        for module in model.modules()
        for name, buffer in module.named_buffers(recurse=False)
        if name in module._non_persistent_buffers_set
    ]


def _load_into(model: nn.Module, state: Mapping[str, torch.Tensor], key: str, spec: str, assign: bool = False) -> None:
    try:
        model.load_state_dict(state, strict=True, assign=assign)
    except RuntimeError as err:  # missing/unexpected keys or shape mismatch
        first = str(err).strip().splitlines()
        raise WeightsError(
            f"{key}={spec}: the state dict does not fit this architecture: {' '.join(first[:3])[:400]}"
        ) from err

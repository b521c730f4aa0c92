"""int8 extraction: post-training static quantisation of an extractor's head, and its measured error.

``quantize`` takes the float head (as ``Extractor.head`` returns it) and a calibration set of decoded
clips, and returns the int8 head with a ``Calibration`` record: which clips calibrated it, which
layers stayed in float, and the error of its per-video features against fp32 on those clips
(relative L2 error and cosine similarity). PyTorch's FX graph mode (``torch.ao.quantization``) with
the x86 backend (fbgemm): per-channel int8 weights, per-tensor activations with a histogram observer
and a reduced (7-bit) range, which keeps AVX2 kernels (no VNNI) from saturating their 16-bit sums, so
every x86 CPU computes the same integers. Reads and writes nothing: the caller supplies the clips.

``choose_calibration`` picks the clips: ``n`` training-split videos of the decoded store, spread by a
hash of their ids (not the first ones by name, which may all come from one source folder).
"""

from __future__ import annotations

import copy
import hashlib
import logging
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

log = logging.getLogger("visual.int8")
BACKEND = "x86"


class QuantizationError(RuntimeError):
    """The head could not be quantised (not traceable, an operator without an int8 kernel, non-finite output)."""


@dataclass(frozen=True)
class Calibration:
    video_ids: tuple[str, ...]  # the clips the activation ranges were observed on, in order
    split: str  # "train", or "all" when the corpus has no training split
    float_layers: tuple[str, ...]  # module paths of the head kept in float
    rel_error: float  # mean over the clips of ||int8 - fp32|| / ||fp32|| of the store's vector column
    max_rel_error: float
    cosine: float  # mean cosine similarity of the same vectors

    def record(self) -> dict:
        return {
            "backend": BACKEND,
            # the ISA of the kernels that ran (VNNI or not): recorded, not in the reuse key (same integers)
            "kernels": torch.backends.cpu.get_cpu_capability(),
            "calibration_videos": list(self.video_ids),
            "calibration_split": self.split,
            "float_layers": list(self.float_layers),
            "rel_error_mean": round(self.rel_error, 6),
            "rel_error_max": round(self.max_rel_error, 6),
            "cosine_mean": round(self.cosine, 6),
        }


def choose_calibration(video_ids: Sequence[str], splits: Sequence[str | None], n: int) -> tuple[list[str], str]:
    """``n`` video ids of the training split (all videos when none is marked train), spread by hash."""
    train = [v for v, s in zip(video_ids, splits) if s == "train"]
    pool, split = (train, "train") if train else (list(video_ids), "all")
    ranked = sorted(pool, key=lambda v: hashlib.sha256(v.encode()).hexdigest())
    return sorted(ranked[:n]), split


def quantize(
    head: nn.Module,
    prepare: Callable[[np.ndarray], torch.Tensor],
    column_of: Callable[[torch.Tensor, int], torch.Tensor],
    clips: np.ndarray,
    video_ids: Sequence[str],
    split: str,
    float_layers: Sequence[str] = (),
    batch: int = 2,
) -> tuple[nn.Module, Calibration]:
    """The int8 version of ``head`` calibrated on ``clips`` ((N, T, H, W, C) uint8), and its record.

    ``prepare(frames) -> input`` and ``column_of(head_output, batch) -> (B, D)`` are the extractor's
    preprocessing and its aggregation to the store's vector column, so the error is measured on what
    the store holds. Deterministic: the same clips give the same scales.
    """
    from torch.ao.quantization import HistogramObserver, QConfig, QConfigMapping, default_per_channel_weight_observer
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    head = copy.deepcopy(head).eval()
    unknown = sorted(set(float_layers) - {name for name, _ in head.named_modules()})
    if unknown:  # QConfigMapping ignores a name it does not find: that layer would silently be int8
        raise QuantizationError(f"int8_float_layers not in the head: {', '.join(unknown)}")
    # get_default_qconfig("x86") with its reduce_range spelled as the range it means: 7-bit activations
    qconfig = QConfig(
        activation=HistogramObserver.with_args(dtype=torch.quint8, quant_min=0, quant_max=127),
        weight=default_per_channel_weight_observer,
    )
    mapping = QConfigMapping().set_global(qconfig)
    for name in float_layers:
        mapping = mapping.set_module_name(name, None)
    chunks = [clips[i : i + batch] for i in range(0, len(clips), batch)]
    with torch.inference_mode():
        inputs = [prepare(c) for c in chunks]
    torch.backends.quantized.engine = BACKEND
    try:
        with warnings.catch_warnings():
            # torch.ao's FX flow and quantized tensors announce their move to torchao on every use; the
            # pinned torch ships them (docs/stages/visual.md says why we use them), so the log stays clean
            warnings.filterwarnings("ignore", message=r".*(torch\.ao\.quantization|quantized tensor creation).*")
            observed = prepare_fx(head, mapping, example_inputs=(inputs[0],))
            with torch.inference_mode():
                for x in inputs:
                    observed(x)
            qhead = convert_fx(observed)
        with torch.inference_mode():
            ref = torch.cat([column_of(head(x), len(c)) for x, c in zip(inputs, chunks)]).float()
            got = torch.cat([column_of(qhead(x), len(c)) for x, c in zip(inputs, chunks)]).float()
    except (torch.fx.proxy.TraceError, NotImplementedError, RuntimeError, TypeError, AssertionError) as err:
        raise QuantizationError(f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}") from err
    if not torch.isfinite(got).all():
        raise QuantizationError("non-finite int8 features on the calibration clips")
    rel = (got - ref).norm(dim=1) / ref.norm(dim=1).clamp_min(1e-12)
    cos = nn.functional.cosine_similarity(got, ref, dim=1)
    calibration = Calibration(
        tuple(video_ids), split, tuple(float_layers), float(rel.mean()), float(rel.max()), float(cos.mean())
    )
    if not math.isfinite(calibration.rel_error):
        raise QuantizationError("the int8 error on the calibration clips is not finite")
    return qhead, calibration

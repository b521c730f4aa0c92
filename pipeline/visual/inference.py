"""Device, precision and threads for extraction, and the two ways to run a model on a batch.

``Engine`` is the pipeline's path: ``torch.inference_mode``, BatchNorm folded into the
convolutions, channels_last (2-D) /
channels_last_3d (3-D) memory format, bf16 autocast where the hardware runs bf16 natively
(``precision: auto``), uint8 frames moved to the device before conversion (4x less copy). With
``precision: int8`` (opt-in, CPU) the head is quantised on a calibration set of decoded clips
(``pipeline.visual.quantize``); if that fails, the engine runs fp32, says why in the log, and its
``placement.precision`` (hence the store's metadata and reuse key) says fp32. ``compile`` (params
``visual.compiled``, fp32 only) replaces the fused head by ``torch.compile``'s inductor graph with frozen
weights (oneDNN weights packed once instead of on every call); the features stay those of the eager head
to float rounding, so the reuse key does not change.
``naive=True`` is the common-script baseline kept for the benchmark and the fp32 reference:
fp32, default memory format, ``torch.no_grad``.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch
from torch import nn

from pipeline.core.config import ConfigError
from pipeline.core.tensors import resolve_device
from pipeline.execution.pools import resolve_workers
from pipeline.visual.extractor import Extractor, VisualConfig

if TYPE_CHECKING:
    from pipeline.visual.quantize import Calibration

log = logging.getLogger("visual.engine")


@dataclass(frozen=True)
class Placement:
    device: torch.device
    precision: Literal["fp32", "bf16", "int8"]
    threads: int


@dataclass(frozen=True)
class CalibrationSet:
    """The decoded clips an int8 engine is calibrated on: (N, T, H, W, C) uint8, with their ids."""

    video_ids: tuple[str, ...]
    clips: np.ndarray
    split: str  # train, or all when the corpus marks no training split


def bf16_native(device: torch.device) -> bool:
    """bf16 is only a speed-up where the hardware has bf16 units; elsewhere it is emulated and slower."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported(including_emulation=False)
    return bool(torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported())


def resolve_precision(cfg: VisualConfig) -> tuple[torch.device, Literal["fp32", "bf16", "int8"]]:
    """The device and the precision ``auto`` stands for on this machine (what changes the features).

    ``auto`` never means int8: quantisation changes the features by a measured error the user opts into.
    """
    device = resolve_device(cfg.device, "visual.device")
    precision = cfg.precision
    if precision == "int8" and device.type != "cpu":
        raise ConfigError(f"visual.precision int8 runs on the CPU (x86 int8 kernels), but visual.device is {device}")
    if precision == "auto":
        precision = "bf16" if bf16_native(device) else "fp32"
    return device, precision


def resolve_placement(cfg: VisualConfig) -> Placement:
    device, precision = resolve_precision(cfg)
    threads = resolve_workers(cfg.threads)
    torch.set_num_threads(threads)  # deliberate: one per core we may use, not torch's guess
    return Placement(device, precision, threads)


def _fuse(net: nn.Module) -> nn.Module:
    """Fold eval-mode BatchNorm into the preceding convolution (a copy; fewer memory-bound passes)."""
    from torch.fx.experimental.optimization import fuse

    try:
        return fuse(net)
    except (torch.fx.proxy.TraceError, TypeError, RuntimeError) as err:  # not traceable: run it unfused
        log.info("conv-bn fusion skipped for %s: %s", type(net).__name__, err)
        return net


def memory_format(ndim: int) -> torch.memory_format:
    return torch.channels_last if ndim == 4 else torch.channels_last_3d


class Engine:
    """Run one extractor's model on batches of decoded clips: uint8 (B, T, H, W, C) -> {column: (B, D)}."""

    def __init__(
        self,
        extractor: Extractor,
        model: nn.Module,
        placement: Placement,
        naive: bool = False,
        calibration: CalibrationSet | None = None,
    ):
        self.extractor, self.placement, self.naive = extractor, placement, naive
        self.device = placement.device
        self.bf16 = placement.precision == "bf16" and not naive
        self.calibration: Calibration | None = None  # int8: what calibrated it and its measured error
        self.fallback: str | None = None  # int8 requested but not used: why
        self.graph: Literal["eager", "compiled"] = "eager"
        self._rows = 0  # compiled: the model-input rows (frames or clips) of the one compiled shape
        if placement.precision == "int8" and not naive:
            self.net = self._quantized(extractor.head(model), calibration)
        else:
            self.net = extractor.head(model) if naive else _fuse(extractor.head(model))
        self._formatted = False

    def _quantized(self, head: nn.Module, calibration: CalibrationSet | None) -> nn.Module:
        from pipeline.visual.quantize import QuantizationError, quantize

        column = self.extractor.vector_column(self.extractor.cfg)
        try:
            if calibration is None or len(calibration.video_ids) == 0:
                raise QuantizationError("no decoded clips to calibrate on")
            qhead, self.calibration = quantize(
                head,
                lambda frames: self.extractor.preprocess(torch.from_numpy(frames)).contiguous(),
                lambda feats, batch: self.extractor.aggregate(feats, batch)[column],
                calibration.clips,
                calibration.video_ids,
                calibration.split,
                self.extractor.int8_float_layers,
            )
        except QuantizationError as err:
            self.fallback = str(err)
            self.placement = Placement(self.placement.device, "fp32", self.placement.threads)
            log.warning("%s: int8 quantisation failed, running fp32 instead: %s", self.extractor.name, err)
            return _fuse(head)
        c = self.calibration
        log.info(
            "%s: int8 calibrated on %d %s clips; %s in float; features vs fp32 on them: rel. error %.2f%% "
            "(max %.2f%%), cosine %.4f",
            self.extractor.name,
            len(c.video_ids),
            c.split,
            ", ".join(c.float_layers) or "no layer",
            100 * c.rel_error,
            100 * c.max_rel_error,
            c.cosine,
        )
        return qhead

    def compile(self, example: np.ndarray) -> None:
        """Run the fp32 head compiled by ``torch.compile`` (inductor, weights frozen), on batches of
        ``example``'s shape: uint8 clips, as many as a full batch, of the store's frame shape.

        A speed choice for CPUs without bf16 units (measured in ``bench/extract.py``). Shorter batches are
        zero-padded to this size, so the one compiled graph serves every batch (a new shape would compile
        again). At another precision, or where compiling fails (no C++ compiler), the head stays eager and
        the log says why."""
        name = self.extractor.name
        if self.naive or self.placement.precision != "fp32":
            log.info("%s: visual.compiled applies to fp32; this run is %s, eager", name, self.placement.precision)
            return
        import torch._inductor.config

        start = time.perf_counter()
        x = self.prepare(example)
        net = self.net.to(memory_format=memory_format(x.dim())).eval()
        compiled = torch.compile(net, dynamic=False)
        try:
            with self._grad_off(), torch._inductor.config.patch(freezing=True):
                compiled(x)  # compiles here, not in the first batch's time
        except (RuntimeError, OSError) as err:
            log.warning("%s: torch.compile failed, the fp32 head runs eager: %s", name, str(err).splitlines()[0])
            return
        self.net, self._formatted, self.graph, self._rows = compiled, True, "compiled", x.shape[0]
        log.info(
            "%s: fp32 head compiled (torch.compile, inductor, frozen weights) in %.1f s",
            name,
            time.perf_counter() - start,
        )

    def _grad_off(self):
        return torch.no_grad() if self.naive else torch.inference_mode()

    def prepare(self, frames: np.ndarray) -> torch.Tensor:
        """uint8 (B, T, H, W, C) numpy -> model input on the device. Thread-safe (runs ahead of ``run``)."""
        with self._grad_off():
            t = torch.from_numpy(frames)
            if self.device.type == "cuda":
                t = t.pin_memory().to(self.device, non_blocking=True)
            x = self.extractor.preprocess(t)
            if self.naive:
                return x.contiguous()
            return x.contiguous(memory_format=memory_format(x.dim()))

    def run(self, x: torch.Tensor, batch: int) -> dict[str, np.ndarray]:
        if not self.naive and not self._formatted and self.calibration is None:
            self.net = self.net.to(memory_format=memory_format(x.dim()))  # weights in the input's layout
            self._formatted = True
        autocast = torch.autocast(self.device.type, dtype=torch.bfloat16) if self.bf16 else contextlib.nullcontext()
        with self._grad_off():
            with autocast:
                feats = self._forward(x)  # (N, D) per frame or clip
            out = self.extractor.aggregate(feats, batch)
        return {k: v.float().cpu().numpy() for k, v in out.items()}  # (B, D) each

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        short = self._rows - x.shape[0]
        if self.graph != "compiled" or short <= 0:
            return self.net(x)
        # rows are frames or clips, each its own sample (eval mode): zero rows change no other row
        padded = torch.cat([x, x.new_zeros((short, *x.shape[1:]))]).contiguous(memory_format=memory_format(x.dim()))
        return self.net(padded)[: x.shape[0]]

    def __call__(self, frames: np.ndarray) -> dict[str, np.ndarray]:
        return self.run(self.prepare(frames), frames.shape[0])

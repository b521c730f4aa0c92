"""Clip-level audio features from mono samples: MFCC statistics, segment log-mel, pyAudioAnalysis.

Pure functions: float32 mono samples (as in the decoded store) in, float32 arrays out.
Each set registers by name in ``FEATURE_SETS`` (one ``FeatureSet`` interface); ``features``
runs the sets that ``audio.feature_sets`` enables. Input conventions, documented in the README:

- samples are resampled to ``audio.sample_rate`` with ``librosa.resample`` (soxr_hq) when the
  decoded rate differs, and zero-padded to one window when shorter than one;
- pyAudioAnalysis gets float64 samples multiplied by 2**15 (int16 scale, unrounded): its
  ``feature_extraction`` divides by 2**15 and then peak-normalises the clip (``dc_normalize``),
  so its energy features are relative to the clip's own peak, not absolute levels;
- no audio (or zero samples) gives zero vectors; the caller records ``has_audio = false``.

Performance note: ``ShortTermFeatures.chroma_features_init(num_fft, rate)`` is a pure function
that the library recomputes for every 50 ms frame (60% of its run time). We memoise it (same
arrays, made read-only); outputs are bit-identical, which tests/pipeline/audio/test_features.py checks.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass

import librosa  # lazy: its submodules load on first use
import numpy as np
from threadpoolctl import threadpool_limits

from pipeline.core.config import FieldError, at_least, check_rate, positive
from pipeline.core.modality import ModalityReduceConfig
from registry import Registry

DELTA_WIDTH = 9  # librosa.feature.delta's default window (frames)
INT16_SCALE = 2.0**15  # pyAudioAnalysis divides its input by this
RESAMPLE_TYPE = "soxr_hq"


@functools.cache
def mid_term_features():
    """pyAudioAnalysis' MidTermFeatures, imported on first use (it pulls in matplotlib: seconds) with the
    memoised ``chroma_features_init`` installed; ``_original_chroma_init`` keeps the library's own."""
    global _original_chroma_init
    from pyAudioAnalysis import MidTermFeatures, ShortTermFeatures

    _original_chroma_init = ShortTermFeatures.chroma_features_init
    ShortTermFeatures.chroma_features_init = _cached_chroma_init
    return MidTermFeatures


_original_chroma_init: Callable[[int, int], tuple[np.ndarray, np.ndarray]] | None = None


@functools.lru_cache(maxsize=16)
def _cached_chroma_init(num_fft: int, sampling_rate: int) -> tuple[np.ndarray, np.ndarray]:
    arrays = _original_chroma_init(num_fft, sampling_rate)
    for array in arrays:
        array.setflags(write=False)  # shared between frames: a write would raise, not corrupt
    return arrays


def stft_sizes(cfg: AudioConfig) -> tuple[int, int]:
    """(n_fft, hop_length) in samples at ``cfg.sample_rate``."""
    return round(cfg.window_ms * cfg.sample_rate / 1000), max(1, round(cfg.hop_ms * cfg.sample_rate / 1000))


def pyaa_sizes(cfg: AudioConfig) -> tuple[int, int]:
    """(window, step) in samples at ``cfg.sample_rate`` for pyAudioAnalysis."""
    rate = cfg.sample_rate
    return round(cfg.pyaa_window_ms * rate / 1000), max(1, round(cfg.pyaa_step_ms * rate / 1000))


def pad_to(samples: np.ndarray, length: int) -> np.ndarray:
    """Zero-pad at the end to at least ``length`` samples (audio shorter than one window)."""
    return np.pad(samples, (0, length - samples.size)) if samples.size < length else samples


# ---- feature sets -------------------------------------------------------------------------

MFCC_BLOCKS = ("mfcc", "delta", "delta2")


def mfcc_names(cfg: AudioConfig) -> list[str]:
    blocks = MFCC_BLOCKS if cfg.mfcc_deltas else MFCC_BLOCKS[:1]
    return [f"{block}_{i}_{stat}" for block in blocks for stat in ("mean", "std") for i in range(cfg.n_mfcc)]


def mfcc_stats(samples: np.ndarray, rate: int, cfg: AudioConfig) -> np.ndarray:
    """librosa MFCCs (and deltas) summarised over time: [mean, std] per block, see ``mfcc_names``."""
    n_fft, hop = stft_sizes(cfg)
    y = pad_to(samples, n_fft)
    coeffs = librosa.feature.mfcc(
        y=y, sr=rate, n_mfcc=cfg.n_mfcc, n_fft=n_fft, hop_length=hop, n_mels=cfg.n_mels
    )  # (n_mfcc, F)
    blocks = [coeffs]
    if cfg.mfcc_deltas:
        # 'interp' (the default) needs DELTA_WIDTH frames; very short clips use edge padding instead
        mode = "interp" if coeffs.shape[1] >= DELTA_WIDTH else "nearest"
        blocks += [librosa.feature.delta(coeffs, order=k, width=DELTA_WIDTH, mode=mode) for k in (1, 2)]
    return np.concatenate([stat for b in blocks for stat in (b.mean(axis=1), b.std(axis=1))])


def segment_means(frames: np.ndarray, segments: int) -> np.ndarray:
    """(D, F) frames -> (segments, D) means over ``segments`` equal runs of frames.

    With fewer frames than segments, a segment takes the frame it starts in (frames repeat),
    so the shape is the same for any duration.
    """
    n = frames.shape[1]
    k = np.arange(segments)
    start = (k * n) // segments
    stop = np.maximum(((k + 1) * n) // segments, start + 1)
    cums = np.concatenate([np.zeros((frames.shape[0], 1)), np.cumsum(frames, axis=1, dtype=np.float64)], axis=1)
    return ((cums[:, stop] - cums[:, start]) / (stop - start)).T  # (segments, D)


def logmel_segments(samples: np.ndarray, rate: int, cfg: AudioConfig) -> np.ndarray:
    """Mel power averaged over each of ``cfg.segments`` equal segments, in dB re 1.0 (floor -100 dB)."""
    n_fft, hop = stft_sizes(cfg)
    y = pad_to(samples, n_fft)
    power = librosa.feature.melspectrogram(y=y, sr=rate, n_fft=n_fft, hop_length=hop, n_mels=cfg.n_mels)  # (n_mels, F)
    seg = segment_means(power, cfg.segments)  # (segments, n_mels)
    return librosa.power_to_db(seg, ref=1.0, amin=1e-10, top_db=None)


def pyaa_stats(samples: np.ndarray, rate: int, cfg: AudioConfig) -> np.ndarray:
    """pyAudioAnalysis' 34 short-term features, mean then std over the clip (its mid-term statistics)."""
    window, step = pyaa_sizes(cfg)
    x = pad_to(samples.astype(np.float64) * INT16_SCALE, window)  # the int16 scale the library assumes
    # One mid-term window spanning the whole clip: the library's mean and std of every short-term
    # feature (it always adds deltas; we keep the 34 base features' statistics).
    mid, _, names = mid_term_features().mid_feature_extraction(x, rate, x.size, x.size, window, step)  # (136, 1)
    keep = [i for i, name in enumerate(names) if not name.startswith("delta")]
    return np.nan_to_num(mid[keep, 0])  # the library already maps NaN to 0; kept explicit for silence


@functools.cache
def _pyaa_names(rate: int, window: int, step: int) -> tuple[str, ...]:
    x = np.zeros(window, np.float64)
    _, _, names = mid_term_features().mid_feature_extraction(x, rate, window, window, window, step)
    return tuple(name for name in names if not name.startswith("delta"))


def pyaa_names(cfg: AudioConfig) -> list[str]:
    return list(_pyaa_names(cfg.sample_rate, *pyaa_sizes(cfg)))


def logmel_names(cfg: AudioConfig) -> list[str]:
    """The mel bands (last axis), named by centre frequency; rows are segments 0..segments-1."""
    centres = librosa.mel_frequencies(cfg.n_mels + 2, fmin=0.0, fmax=cfg.sample_rate / 2)[1:-1]
    return [f"mel_{m}_{hz:.0f}hz" for m, hz in enumerate(centres)]


@dataclass(frozen=True)
class FeatureSet:
    """One registered feature set: its array shape, the names of its last axis and its extractor."""

    shape: Callable[[AudioConfig], tuple[int, ...]]
    names: Callable[[AudioConfig], list[str]]  # one per entry of shape[-1]
    extract: Callable[[np.ndarray, int, AudioConfig], np.ndarray]  # (N,) samples -> array of ``shape``
    reduce_defaults: ModalityReduceConfig | None = None  # a vector reduce can read (None: not a reduce modality)


# Registration order is the store's column order (stable whatever params list first).
FEATURE_SETS: Registry[FeatureSet] = Registry("audio feature set", key="audio.feature_sets")
FEATURE_SETS.register(
    "mfcc",
    FeatureSet(lambda c: (2 * c.n_mfcc * (3 if c.mfcc_deltas else 1),), mfcc_names, mfcc_stats, ModalityReduceConfig()),
)
FEATURE_SETS.register("logmel_segments", FeatureSet(lambda c: (c.segments, c.n_mels), logmel_names, logmel_segments))
FEATURE_SETS.register("pyaa", FeatureSet(lambda c: (68,), pyaa_names, pyaa_stats, ModalityReduceConfig()))


def enabled(cfg: AudioConfig) -> list[str]:
    """Enabled set names in registration order (a stable column order whatever params list first)."""
    return [name for name in FEATURE_SETS.members() if name in cfg.feature_sets]


def zeros(cfg: AudioConfig) -> dict[str, np.ndarray]:
    return {name: np.zeros(FEATURE_SETS.get(name).shape(cfg), np.float32) for name in enabled(cfg)}


def prepare(samples: np.ndarray, rate: int, cfg: AudioConfig) -> np.ndarray:
    """Mono float32 at ``cfg.sample_rate``; raises ValueError on non-finite samples."""
    y = np.asarray(samples, dtype=np.float32)
    if y.ndim == 2:
        y = librosa.to_mono(y)  # (C, N) -> (N,)
    if not np.isfinite(y).all():
        raise ValueError(f"{int((~np.isfinite(y)).sum())} non-finite audio samples")
    if rate != cfg.sample_rate:
        y = librosa.resample(y, orig_sr=rate, target_sr=cfg.sample_rate, res_type=RESAMPLE_TYPE)
    return y


def features(samples: np.ndarray | None, rate: int, cfg: AudioConfig) -> dict[str, np.ndarray]:
    """Every enabled feature set of one clip, as float32 arrays of each set's ``shape``."""
    if samples is None or samples.size == 0:
        return zeros(cfg)
    y = prepare(samples, rate, cfg)
    out = {}
    for name in enabled(cfg):
        spec = FEATURE_SETS.get(name)
        value = np.asarray(spec.extract(y, cfg.sample_rate, cfg), dtype=np.float32)
        if value.shape != spec.shape(cfg):
            raise AssertionError(f"{name}: got shape {value.shape}, registry says {spec.shape(cfg)}")
        out[name] = value
    return out


def warm_up(cfg: AudioConfig) -> float:
    """Prepare this process for extraction; returns the seconds it took. Once per worker, not per video.

    Runs every enabled set once on 1 s of noise (librosa's numba compile, or its disk cache) and
    limits BLAS to one thread: the matrices here are small, and multi-threaded BLAS made a single
    process ~25% slower (measured), worse with one worker per core.
    """
    start = time.perf_counter()
    threadpool_limits(limits=1, user_api="blas")
    noise = np.random.default_rng(0).standard_normal(cfg.sample_rate).astype(np.float32) * 0.1
    features(noise, cfg.sample_rate, cfg)
    return time.perf_counter() - start


@dataclass(frozen=True)
class AudioConfig:
    sample_rate: int  # features are computed at this rate; other decoded rates are resampled (soxr_hq)
    window_ms: float  # librosa STFT window (n_fft = win_length) for mfcc and logmel_segments
    hop_ms: float
    n_mfcc: int
    mfcc_deltas: bool  # also summarise first and second MFCC deltas
    n_mels: int  # mel bands of logmel_segments and of the filterbank under the MFCCs
    segments: int  # equal time segments of logmel_segments
    pyaa_window_ms: float  # pyAudioAnalysis short-term window and step
    pyaa_step_ms: float
    feature_sets: tuple[str, ...]  # names in pipeline.audio.feature_set.FEATURE_SETS; the others' columns are absent
    workers: int  # worker processes, 0 = one per CPU core
    max_failure_rate: float

    def __post_init__(self) -> None:
        check_rate(self.max_failure_rate)
        at_least(self, 0, "workers", meaning="0 = one per core")
        at_least(self, 1000, "sample_rate")
        at_least(self, 1, "n_mfcc", "n_mels", "segments")
        if self.n_mfcc > self.n_mels:
            raise FieldError("n_mfcc", f"({self.n_mfcc}) cannot exceed n_mels ({self.n_mels})")
        positive(self, "window_ms", "pyaa_window_ms")
        if not 0 < self.hop_ms <= self.window_ms:
            raise FieldError("hop_ms", f"must be in (0, window_ms = {self.window_ms}], got {self.hop_ms!r}")
        if not 0 < self.pyaa_step_ms <= self.pyaa_window_ms:
            raise FieldError(
                "pyaa_step_ms", f"must be in (0, pyaa_window_ms = {self.pyaa_window_ms}], got {self.pyaa_step_ms!r}"
            )
        if not self.feature_sets or len(set(self.feature_sets)) != len(self.feature_sets):
            raise FieldError("feature_sets", f"must name at least one set, each once; got {list(self.feature_sets)}")
        for i, name in enumerate(self.feature_sets):
            FEATURE_SETS.check(name, f"audio.feature_sets[{i}]")

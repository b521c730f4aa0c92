"""Preloaded by the audio stage's fork server (``bounded_process_map(preload=...)``).

Importing it runs every feature set once, so each worker forked from the server starts with
librosa's numba functions compiled and its lazy submodules imported: the warm-up is paid once
per run, and each worker's own ``audio.warm_up`` then takes milliseconds.
"""

from __future__ import annotations

from pipeline.audio import features as audio
from pipeline.audio.features import AudioConfig

# Only the code paths matter here (numba compiles per argument type, not per value).
WARM_UP_CONFIG = AudioConfig(
    sample_rate=16000,
    window_ms=25.0,
    hop_ms=10.0,
    n_mfcc=13,
    mfcc_deltas=True,
    n_mels=64,
    segments=32,
    pyaa_window_ms=50.0,
    pyaa_step_ms=25.0,
    feature_sets=tuple(audio.FEATURE_SETS.members()),
    workers=1,
    max_failure_rate=1.0,
)
WARM_UP_SECONDS = audio.warm_up(WARM_UP_CONFIG)

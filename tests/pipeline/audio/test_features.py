"""pipeline.audio.features: known signals, equality with direct library calls, shapes, no NaN."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import librosa
import numpy as np
import pytest
import yaml
from pyAudioAnalysis import MidTermFeatures, ShortTermFeatures

from pipeline.audio import features as audio
from pipeline.core.config import ConfigError, build
from pipeline.params import AudioConfig, Params, load_params

RATE = 16000
PARAMS = Path(__file__).resolve().parents[3] / "params.yaml"


@pytest.fixture(scope="module")
def cfg() -> AudioConfig:
    cfg = load_params(PARAMS).audio  # the shipped defaults
    audio.warm_up(cfg)  # one numba compile for the module
    return cfg


def tone(freq: float, seconds: float, rate: int = RATE, amp: float = 0.5) -> np.ndarray:
    return (amp * np.sin(2 * np.pi * freq * np.arange(int(seconds * rate)) / rate)).astype(np.float32)


def noise(seconds: float, rate: int = RATE, seed: int = 0) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal(int(seconds * rate))).astype(np.float32)


def pyaa(values: np.ndarray, cfg: AudioConfig) -> dict[str, float]:
    return dict(zip(audio.pyaa_names(cfg), values.tolist()))


# ---- registry contract ---------------------------------------------------------------------


def test_unknown_feature_set_fails_when_params_are_read():
    raw = yaml.safe_load(PARAMS.read_text())
    raw["audio"]["feature_sets"] = ["mfcc", "mfccs"]
    with pytest.raises(
        ConfigError,
        match=r"unknown audio feature set .mfccs. in audio.feature_sets\[1\].*did you mean 'mfcc'.*registered: "
        r"logmel_segments, mfcc, pyaa",
    ):
        build(Params, raw)


@pytest.mark.parametrize("name", list(audio.FEATURE_SETS.members()))
def test_feature_set_contract(name, cfg):
    spec = audio.FEATURE_SETS.get(name)
    y = noise(2.0)
    a, b = spec.extract(y, RATE, cfg), spec.extract(y.copy(), RATE, cfg)
    assert a.shape == spec.shape(cfg)
    assert len(spec.names(cfg)) == spec.shape(cfg)[-1]
    assert np.isfinite(a).all() and np.array_equal(a, b)  # deterministic
    assert np.abs(a).max() > 0


def test_only_enabled_sets_are_computed(cfg):
    only = dataclasses.replace(cfg, feature_sets=("pyaa", "mfcc"))
    out = audio.features(noise(1.0), RATE, only)
    assert list(out) == ["mfcc", "pyaa"]  # registry order, whatever params list first


# ---- known signals ---------------------------------------------------------------------------


@pytest.mark.parametrize("freq", [440.0, 1000.0, 3000.0])
def test_tone_spectral_centroid_near_its_frequency(freq, cfg):
    stats = pyaa(audio.features(tone(freq, 2.0), RATE, cfg)["pyaa"], cfg)
    centroid_hz = stats["spectral_centroid_mean"] * RATE / 2  # the library reports a fraction of Nyquist
    assert centroid_hz == pytest.approx(freq, rel=0.05, abs=30)
    assert stats["spectral_spread_mean"] < 0.01
    # a pure tone crosses zero twice per period
    assert stats["zcr_mean"] == pytest.approx(2 * freq / RATE, rel=0.05)


def test_tone_log_mel_peaks_in_its_band(cfg):
    out = audio.features(tone(1000.0, 3.0), RATE, cfg)["logmel_segments"]
    centres = librosa.mel_frequencies(cfg.n_mels + 2, fmax=RATE / 2)[1:-1]
    assert np.all(np.abs(centres[out.argmax(axis=1)] - 1000.0) < 120)  # every segment peaks at 1 kHz


def test_silence_has_zero_energy_and_no_nan(cfg):
    out = audio.features(np.zeros(2 * RATE, np.float32), RATE, cfg)
    assert all(np.isfinite(v).all() for v in out.values())
    stats = pyaa(out["pyaa"], cfg)
    assert stats["energy_mean"] == 0 and stats["energy_std"] == 0
    assert stats["energy_entropy_mean"] == 0 and stats["spectral_entropy_mean"] == 0
    assert np.all(out["logmel_segments"] == -100.0)  # the -100 dB floor (amin 1e-10)
    assert np.all(out["mfcc"][1 : cfg.n_mfcc] == 0)  # a flat spectrum: only c0 is non-zero


def test_silence_then_tone_shows_in_segments(cfg):
    y = np.concatenate([np.zeros(2 * RATE, np.float32), tone(500.0, 2.0)])
    seg = audio.features(y, RATE, cfg)["logmel_segments"]  # (32, n_mels)
    assert seg[:15].max() < -90 and seg[17:].max() > -30


@pytest.mark.parametrize("n_samples", [1, 10, 399, 400, 401, 4000, 16000, 123457])
def test_segment_matrix_shape_for_any_duration(n_samples, cfg):
    out = audio.features(noise(n_samples / RATE + 1e-9)[:n_samples], RATE, cfg)
    assert out["logmel_segments"].shape == (cfg.segments, cfg.n_mels)
    assert out["mfcc"].shape == (6 * cfg.n_mfcc,) and out["pyaa"].shape == (68,)
    assert all(np.isfinite(v).all() for v in out.values())


def test_segment_means_equal_runs_and_short_inputs():
    frames = np.arange(64, dtype=np.float64)[None, :]  # (1, 64)
    np.testing.assert_allclose(audio.segment_means(frames, 32)[:, 0], np.arange(32) * 2 + 0.5)
    short = np.arange(5, dtype=np.float64)[None, :]  # fewer frames than segments: frames repeat
    got = audio.segment_means(short, 8)[:, 0]
    assert got.shape == (8,) and set(got) == {0.0, 1.0, 2.0, 3.0, 4.0}
    assert np.all(np.diff(got) >= 0)


def test_no_audio_gives_zero_vectors(cfg):
    for empty in (None, np.zeros(0, np.float32)):
        out = audio.features(empty, RATE, cfg)
        assert {k: v.shape for k, v in out.items()} == {k: audio.FEATURE_SETS.get(k).shape(cfg) for k in out}
        assert all(not v.any() for v in out.values())


@pytest.mark.parametrize("signal", ["dc", "clipped", "impulse", "tiny"])
def test_awkward_signals_give_finite_features(signal, cfg):
    y = {
        "dc": np.full(RATE, 0.3, np.float32),
        "clipped": np.clip(noise(1.0) * 50, -1, 1),
        "impulse": np.eye(1, RATE, RATE // 2, dtype=np.float32)[0],
        "tiny": noise(1.0) * 1e-7,
    }[signal]
    assert all(np.isfinite(v).all() for v in audio.features(y, RATE, cfg).values())


def test_non_finite_samples_are_rejected(cfg):
    y = noise(0.5)
    y[100] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        audio.features(y, RATE, cfg)


# ---- equality with direct library calls on the same samples ------------------------------------


def test_mfcc_equals_librosa(cfg):
    y = noise(3.0)
    n_fft, hop = audio.stft_sizes(cfg)
    m = librosa.feature.mfcc(y=y, sr=RATE, n_mfcc=cfg.n_mfcc, n_fft=n_fft, hop_length=hop, n_mels=cfg.n_mels)
    blocks = [m, librosa.feature.delta(m), librosa.feature.delta(m, order=2)]
    want = np.concatenate([s for b in blocks for s in (b.mean(1), b.std(1))])
    np.testing.assert_allclose(audio.features(y, RATE, cfg)["mfcc"], want, rtol=1e-5, atol=1e-4)
    no_deltas = dataclasses.replace(cfg, mfcc_deltas=False)
    assert audio.features(y, RATE, no_deltas)["mfcc"].shape == (2 * cfg.n_mfcc,)


def test_logmel_segments_equal_librosa(cfg):
    n_fft, hop = audio.stft_sizes(cfg)
    y = noise((32 * 5 - 1) * hop / RATE)  # 160 frames: 5 per segment
    power = librosa.feature.melspectrogram(y=y, sr=RATE, n_fft=n_fft, hop_length=hop, n_mels=cfg.n_mels)
    assert power.shape[1] == 160
    want = librosa.power_to_db(power.reshape(cfg.n_mels, 32, 5).mean(-1).T, ref=1.0, amin=1e-10, top_db=None)
    np.testing.assert_allclose(audio.features(y, RATE, cfg)["logmel_segments"], want, rtol=1e-5, atol=1e-4)


def test_pyaa_equals_the_library_unpatched(cfg, monkeypatch):
    y = noise(2.0) + tone(700.0, 2.0, amp=0.2)
    got = audio.features(y, RATE, cfg)["pyaa"]
    window, step = audio.pyaa_sizes(cfg)
    x = y.astype(np.float64) * 2**15
    cached, _ = ShortTermFeatures.feature_extraction(x, RATE, window, step, deltas=False)
    audio.mid_term_features()
    monkeypatch.setattr(ShortTermFeatures, "chroma_features_init", audio._original_chroma_init)
    short, names = ShortTermFeatures.feature_extraction(x, RATE, window, step, deltas=False)  # (34, frames)
    assert np.array_equal(cached, short)  # the memoised chroma tables change nothing
    assert len(names) == 34
    np.testing.assert_allclose(got, np.concatenate([short.mean(1), short.std(1)]), rtol=1e-5, atol=1e-7)
    mid, _, mid_names = MidTermFeatures.mid_feature_extraction(x, RATE, x.size, x.size, window, step)
    assert audio.pyaa_names(cfg) == [n for n in mid_names if not n.startswith("delta")]


# ---- sources at other rates and channel counts --------------------------------------------------


@pytest.mark.parametrize("rate", [8000, 22050, 48000])
def test_other_rates_are_resampled(rate, cfg):
    out = audio.features(tone(1000.0, 1.5, rate=rate), rate, cfg)
    assert out["logmel_segments"].shape == (cfg.segments, cfg.n_mels)
    centroid_hz = pyaa(out["pyaa"], cfg)["spectral_centroid_mean"] * cfg.sample_rate / 2
    assert centroid_hz == pytest.approx(1000.0, rel=0.05)
    want = audio.features(
        librosa.resample(tone(1000.0, 1.5, rate=rate), orig_sr=rate, target_sr=RATE, res_type="soxr_hq"), RATE, cfg
    )
    np.testing.assert_array_equal(out["mfcc"], want["mfcc"])


def test_six_channels_are_downmixed(cfg):
    channels = np.stack([tone(300.0 * (c + 1), 1.0) for c in range(6)])  # (C, N)
    got = audio.features(channels, RATE, cfg)
    want = audio.features(librosa.to_mono(channels), RATE, cfg)
    assert all(np.array_equal(got[k], want[k]) for k in want)


# ---- params -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change, message",
    [
        ({"n_mfcc": 80}, "n_mfcc"),
        ({"hop_ms": 40.0}, "hop_ms"),
        ({"feature_sets": ("mfcc", "mfcc")}, "once"),
        ({"feature_sets": ()}, "at least one"),
        ({"segments": 0}, "segments"),
    ],
)
def test_bad_audio_params_are_rejected(change, message, cfg):
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(cfg, **change)


def test_unknown_feature_set_names_the_key(tmp_path):
    text = PARAMS.read_text(encoding="utf-8").replace("[mfcc, logmel_segments, pyaa]", "[mfcc, chroma]")
    (tmp_path / "params.yaml").write_text(text)
    with pytest.raises(ConfigError, match=r"audio\.feature_sets\[1\]"):
        load_params(tmp_path / "params.yaml")

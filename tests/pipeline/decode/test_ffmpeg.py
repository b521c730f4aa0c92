from __future__ import annotations

import numpy as np
import pytest

from pipeline.decode.ffmpeg import MediaError, decode_clip, probe, sample_indices
from tests.media_fixtures import make_clip, make_halves
from tests.process_tree import name, needs_proc, survivors_of_kill


@pytest.mark.parametrize("n, num", [(100, 32), (32, 32), (7, 32), (1, 4), (1000, 1)])
@pytest.mark.parametrize("method", ["uniform", "consecutive"])
def test_sample_indices_are_sorted_in_range_and_sized(n, num, method):
    idx = sample_indices(n, num, method)
    assert idx.shape == (num,)
    assert idx.min() >= 0 and idx.max() <= n - 1
    assert np.all(np.diff(idx) >= 0)
    if n >= num:
        assert len(np.unique(idx)) == num  # no repeats unless the video is too short


def test_uniform_takes_segment_centres_and_consecutive_a_centred_window():
    np.testing.assert_array_equal(sample_indices(40, 4, "uniform"), [5, 15, 25, 35])
    np.testing.assert_array_equal(sample_indices(40, 4, "consecutive"), [18, 19, 20, 21])
    np.testing.assert_array_equal(sample_indices(2, 4, "uniform"), [0, 0, 1, 1])  # padded by repetition
    with pytest.raises(ValueError, match="unknown sampling"):
        sample_indices(10, 2, "random")


def test_probe_reports_stream_facts(tmp_path):
    info = probe(make_clip(tmp_path / "a.mp4", seconds=2.0, size=(80, 60), fps=10, audio_rate=8000, channels=2))
    assert (info.width, info.height, info.n_frames) == (80, 60, 20)
    assert info.fps == pytest.approx(10) and info.duration_s == pytest.approx(2.0, abs=0.05)
    assert info.has_audio and info.audio_rate == 8000 and info.audio_channels == 2
    assert probe(make_clip(tmp_path / "b.mp4", audio_rate=None)).has_audio is False


@pytest.mark.parametrize(
    "content, reason", [(None, "missing_file"), (b"", "empty_file"), (b"not a video", "unreadable")]
)
def test_probe_failures_carry_a_reason(tmp_path, content, reason):
    path = tmp_path / "x.mp4"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(MediaError) as err:
        probe(path)
    assert err.value.reason == reason


def test_decode_shapes_audio_length_and_padding(tmp_path):
    path = make_clip(tmp_path / "a.mp4", seconds=1.5, size=(96, 64), fps=10, audio_rate=48000, channels=6)
    info = probe(path)
    clip = decode_clip(str(path), info, 8, "uniform", 32, 16000)
    assert clip.frames.shape == (8, 32, 32, 3) and clip.frames.dtype == np.uint8
    assert not clip.padded and clip.n_unique == 8
    assert clip.audio.dtype == np.float32 and clip.audio.size == pytest.approx(1.5 * 16000, rel=0.03)
    long = decode_clip(str(path), info, 32, "uniform", 32, 16000)  # 15 frames < 32
    assert long.padded and long.n_unique == 15 and long.frames.shape[0] == 32
    np.testing.assert_array_equal(long.frames[0], long.frames[1])  # repetition, not black frames


def test_uniform_and_consecutive_pick_the_frames_they_name(tmp_path):
    # testsrc2 draws a moving pattern, so different source frames differ and equal ones match.
    path = make_clip(tmp_path / "a.mp4", seconds=4.0, fps=10, audio_rate=None)
    info = probe(path)
    every = decode_clip(str(path), info, 40, "uniform", 32, 16000).frames  # all 40 frames, in order
    window = decode_clip(str(path), info, 4, "consecutive", 32, 16000)
    np.testing.assert_array_equal(window.indices, [18, 19, 20, 21])
    assert np.abs(window.frames.astype(int) - every[18:22].astype(int)).max() <= 2  # seek is frame-exact
    spread = decode_clip(str(path), info, 4, "uniform", 32, 16000)
    assert np.abs(spread.frames.astype(int) - every[[5, 15, 25, 35]].astype(int)).max() <= 2


def test_rotation_metadata_is_applied(tmp_path):
    plain = decode_clip(*_args(make_halves(tmp_path / "p.mp4")))
    rotated_path = make_halves(tmp_path / "r.mp4", rotate=90)
    assert probe(rotated_path).display_size == (32, 64)
    rotated = decode_clip(*_args(rotated_path))
    f0, f1 = plain.frames[0].astype(int), rotated.frames[0].astype(int)
    # unrotated: left red, right blue; rotated: the halves are now top and bottom
    assert f0[16, 2, 0] > 200 and f0[16, -3, 2] > 200
    assert abs(f1[2, 16] - f1[-3, 16]).sum() > 300 and abs(f1[16, 2] - f1[16, -3]).sum() < 30


def test_non_square_pixels_are_made_square_before_cropping(tmp_path):
    # 64x32 coded at SAR 1:2 displays as 32x32: the crop keeps both halves.
    clip = decode_clip(*_args(make_halves(tmp_path / "s.mp4", sar="1/2")))
    frame = clip.frames[0].astype(int)
    assert frame[16, 1, 0] > 200 and frame[16, -2, 2] > 200


def _args(path):
    return str(path), probe(path), 2, "uniform", 32, 16000


# As the decode stage runs ffmpeg: from a pool thread (pools.threads), through ffmpeg._run. The lavfi
# source never ends and writes nothing to the pipe, so only the parent's death can stop it (as a
# long decode that writes its frames only at the end).
ENDLESS_DECODE = """
import ffmpeg
from pipeline.decode.ffmpeg import _run
from pipeline.execution.pools import bounded_map
src = ffmpeg.input("testsrc=size=32x32:rate=5", f="lavfi", re=None)
list(bounded_map(lambda _: _run([ffmpeg.output(src, "pipe:", f="null")]), range(2), workers=2))
"""


@needs_proc
def test_killed_decode_takes_its_ffmpeg_children_down():
    survivors = survivors_of_kill(ENDLESS_DECODE, lambda tree: [name(p) for p in tree].count("ffmpeg") == 2)
    assert survivors == []

import numpy as np
import torch

from pipeline.visual.clips import covering_clips, gather_clips, resize_center_crop, to_float_frames, uniform_clip


def test_covering_clips_split_and_overlap():
    assert covering_clips(32, 16).tolist() == [list(range(16)), list(range(16, 32))]
    assert covering_clips(40, 16)[:, 0].tolist() == [0, 12, 24]  # the last clips overlap, no frame dropped
    assert covering_clips(16, 16).tolist() == [list(range(16))]
    short = covering_clips(4, 16)  # fewer frames than a clip: each frame repeated 4 times
    assert short.shape == (1, 16) and short[0].tolist() == [i // 4 for i in range(16)]


def test_uniform_clip_centres_segments():
    assert uniform_clip(32, 8).tolist() == [[2, 6, 10, 14, 18, 22, 26, 30]]
    assert uniform_clip(8, 8).tolist() == [list(range(8))]


def test_to_float_frames_is_channels_last_and_scaled():
    frames = torch.arange(2 * 3 * 4 * 4 * 3, dtype=torch.int64).remainder(256).to(torch.uint8).view(2, 3, 4, 4, 3)
    x = to_float_frames(frames)  # (B*T, C, H, W)
    assert x.shape == (6, 3, 4, 4) and x.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(x[4, 1], frames[1, 1, :, :, 1].float() / 255)


def test_gather_clips_layout():
    b, t = 2, 6
    x = torch.arange(b * t, dtype=torch.float32).view(b * t, 1, 1, 1).expand(b * t, 3, 2, 2)  # value = frame number
    clips = gather_clips(x, b, np.array([[0, 1, 2], [3, 4, 5]]))  # (B*n, C, L, H, W)
    assert clips.shape == (4, 3, 3, 2, 2)
    assert clips[:, 0, :, 0, 0].tolist() == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9, 10, 11]]


def test_resize_center_crop_shape_and_constant():
    x = torch.full((2, 3, 224, 224), 0.5)
    y = resize_center_crop(x, 128, 112)
    assert y.shape == (2, 3, 112, 112) and torch.allclose(y, torch.tensor(0.5))

"""Frame-index plans and tensor transforms shared by the extractors (pure torch, any device)."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F


def uniform_clip(num_frames: int, length: int) -> np.ndarray:
    """One clip of ``length`` frames spread evenly over ``num_frames`` (centre of equal segments), (1, L)."""
    return np.minimum(((np.arange(length) + 0.5) * num_frames / length).astype(np.int64), num_frames - 1)[None]


def covering_clips(num_frames: int, length: int) -> np.ndarray:
    """Consecutive clips of ``length`` frames that together cover all ``num_frames``, (n_clips, L).

    T=32, L=16 -> [0..15], [16..31]; T=40 -> three clips starting at 0, 12, 24 (the last ones
    overlap rather than drop frames); T < L -> one clip that repeats frames evenly.
    """
    if num_frames < length:
        return uniform_clip(num_frames, length)
    n = math.ceil(num_frames / length)
    starts = np.round(np.linspace(0, num_frames - length, n)).astype(np.int64)
    return starts[:, None] + np.arange(length)[None]  # (n, L)


def to_float_frames(frames: torch.Tensor) -> torch.Tensor:
    """(B, T, H, W, C) uint8 -> (B*T, C, H, W) float32 in [0, 1].

    The permute is a view, so the result is channels_last in memory for free.
    """
    b, t, h, w, c = frames.shape
    return frames.reshape(b * t, h, w, c).permute(0, 3, 1, 2).float().div_(255.0)  # (B*T, C, H, W)


def normalize(x: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """Per-channel (x - mean) / std on (N, C, ...) in place."""
    shape = (1, -1) + (1,) * (x.dim() - 2)
    m = torch.tensor(mean, dtype=x.dtype, device=x.device).view(shape)
    s = torch.tensor(std, dtype=x.dtype, device=x.device).view(shape)
    return x.sub_(m).div_(s)


IMAGENET_MEAN = (0.485, 0.456, 0.406)  # ImageNet's normalisation (the Places365 models use it too)
IMAGENET_STD = (0.229, 0.224, 0.225)


def imagenet_frames(frames: torch.Tensor, used: int) -> torch.Tensor:
    """(B, T, H, W, C) uint8 -> (B*F, 3, H, W): ``used`` frames evenly spread over T, ImageNet-normalised.

    The input of the per-frame 2-D networks (resnet152, scene).
    """
    num_frames = frames.shape[1]
    if used != num_frames:
        idx = torch.as_tensor(uniform_clip(num_frames, used)[0], device=frames.device)
        frames = frames.index_select(1, idx)  # (B, F, H, W, C)
    return normalize(to_float_frames(frames), IMAGENET_MEAN, IMAGENET_STD)


def resize_center_crop(x: torch.Tensor, resize: int, crop: int) -> torch.Tensor:
    """(N, C, H, W) square frames -> resized to ``resize`` (antialiased bilinear), centre ``crop``."""
    if x.shape[-1] != resize or x.shape[-2] != resize:
        x = F.interpolate(x, size=(resize, resize), mode="bilinear", antialias=True, align_corners=False)
    top = (resize - crop) // 2
    return x[..., top : top + crop, top : top + crop]


def gather_clips(x: torch.Tensor, batch: int, plan: np.ndarray) -> torch.Tensor:
    """(B*T, C, H, W) frames + (n, L) index plan -> (B*n, C, L, H, W) clips."""
    bt, c, h, w = x.shape
    x = x.reshape(batch, bt // batch, c, h, w)  # (B, T, C, H, W): splits dim 0, a view
    idx = torch.as_tensor(plan.reshape(-1), device=x.device)
    clips = x.index_select(1, idx)  # (B, n*L, C, H, W)
    n, length = plan.shape
    clips = clips.reshape(batch * n, length, c, h, w)  # (B*n, L, C, H, W)
    return clips.permute(0, 2, 1, 3, 4)  # (B*n, C, L, H, W)

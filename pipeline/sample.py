"""The built-in sample corpus: synthetic micro-videos and an interaction log, from a seed.

Each video shows one of two visual patterns and plays one of two audio patterns:

    visual  warm  -- slowly drifting gradients in red/orange/yellow hues (FFmpeg ``gradients``)
            cool  -- a blocky Game-of-Life texture in blue/green hues (FFmpeg ``life``)
    audio   tone  -- a 200-500 Hz sine with tremolo (FFmpeg ``sine``)
            noise -- pink noise (FFmpeg ``anoisesrc``)

Its category is the pair (``warm_tone``, ``warm_noise``, ``cool_tone``, ``cool_noise``), so
either modality alone narrows a video to two categories and only both together identify
it. Size, frame rate, duration, audio rate and channel count vary at random and carry no
label information. A fraction of videos has no audio track; one is shorter than a
32-frame sample. Users click according to their own liking of each visual and audio
pattern plus a per-video appeal, so clicks depend on content (and cold-start videos,
published late, can only be scored from it).

Clip-level interest (FRAME): each video is cut into ``sample.clips`` equal segments, each *vivid* or
*grey* at random (``clip_tints``). Every impression plays: the user watches clip after clip and leaves at
the first one that bores them, continuing a clip with p = sigmoid(stay + 1.5 click + w (+1 if its tint is
the one they like, else -1)) (``plan_watch``), so how far they watch depends on the clips they met. With
``sample.clip_tint`` the grey clips are rendered desaturated, so the visual features see the tint and the
per-clip interest is learnable from content; without it (the default, keeping the default corpus as it
was) the tint is hidden, and clip-level models have nothing to read. Clicks are drawn as before, from
their own random stream, so they do not change with the clip parameters.

Writes ``<out>/videos/vNNN.mp4``, ``<out>/videos/manifest.csv`` (video_id, path, label,
visual, audio, published_at) and ``<out>/interactions.csv`` (user_id, video_id,
timestamp, label, watch_time, duration: seconds watched and the video's length).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import ffmpeg
import numpy as np

from pipeline.core import lifetime
from pipeline.core.store import atomic_path
from pipeline.params import SampleConfig

VISUAL = ("warm", "cool")
AUDIO = ("tone", "noise")
CATEGORIES = tuple(f"{v}_{a}" for v in VISUAL for a in AUDIO)
EPOCH = 1_700_000_000  # timestamps are unix seconds from here
SPAN = 90 * 24 * 3600  # the log covers 90 days; the last 20% of videos are published late


@dataclass(frozen=True)
class VideoSpec:
    video_id: str
    visual: int
    audio: int
    width: int
    height: int
    fps: float
    seconds: float
    audio_rate: int | None  # None: no audio track
    channels: int
    seed: int
    published_at: int
    tints: tuple[int, ...] = ()  # per clip, 1 = rendered grey (desaturated); empty: no clip tint rendered

    @property
    def label(self) -> str:
        return CATEGORIES[2 * self.visual + self.audio]


def plan_videos(cfg: SampleConfig) -> list[VideoSpec]:
    rng = np.random.default_rng(cfg.seed)
    n = cfg.n_videos
    cats = rng.permutation(np.arange(n) % len(CATEGORIES))  # balanced categories
    no_audio = set(rng.choice(n, size=int(round(cfg.no_audio_fraction * n)), replace=False).tolist())
    short = int(rng.integers(n))
    published = np.sort(rng.uniform(0, 0.8 * SPAN, n)).astype(np.int64)
    published[rng.permutation(n)[: n // 5]] += int(0.15 * SPAN)  # a late cohort for cold start
    specs, tints = [], clip_tints(cfg)
    for i in range(n):
        w, h = cfg.sizes[int(rng.integers(len(cfg.sizes)))]
        seconds = cfg.short_seconds if i == short else round(float(rng.uniform(cfg.min_seconds, cfg.max_seconds)), 1)
        specs.append(
            VideoSpec(
                video_id=f"v{i:03d}",
                visual=int(cats[i]) // 2,
                audio=int(cats[i]) % 2,
                width=w,
                height=h,
                fps=float(cfg.fps[int(rng.integers(len(cfg.fps)))]),
                seconds=seconds,
                audio_rate=None if i in no_audio else int(cfg.audio_rates[int(rng.integers(len(cfg.audio_rates)))]),
                channels=int(rng.integers(1, 3)),
                seed=int(rng.integers(1 << 30)),
                published_at=EPOCH + int(published[i]),
                tints=tuple(tints[i].tolist()) if cfg.clip_tint else (),
            )
        )
    return specs


def clip_tints(cfg: SampleConfig) -> np.ndarray:
    """``(n_videos, cfg.clips)`` int8, 1 = a grey clip: the hidden factor of the per-clip interest.

    Its own random stream, so videos, clicks and the default corpus stay as they were."""
    return np.random.default_rng([cfg.seed, 3]).integers(0, 2, (cfg.n_videos, cfg.clips)).astype(np.int8)


def _hex(rgb: np.ndarray) -> str:
    return "0x" + "".join(f"{int(c):02x}" for c in np.clip(rgb, 0, 255))


def _video_source(spec: VideoSpec, rng: np.random.Generator):
    size = f"{spec.width}x{spec.height}"
    if spec.visual == 0:  # warm drifting gradients
        colours = [_hex(rng.uniform([200, 40, 0], [255, 200, 60])) for _ in range(3)]
        return ffmpeg.input(
            f"gradients=s={size}:r={spec.fps}:d={spec.seconds}:nb_colors=3:c0={colours[0]}:c1={colours[1]}"
            f":c2={colours[2]}:speed={rng.uniform(0.01, 0.05):.4f}:seed={spec.seed}",
            f="lavfi",
        ).video
    cell = 8  # cool blocky life: simulate at 1/8 size, upscale with nearest neighbour
    live, dead = _hex(rng.uniform([0, 120, 160], [80, 255, 255])), _hex(rng.uniform([0, 20, 60], [30, 70, 120]))
    small = f"{max(2, spec.width // cell)}x{max(2, spec.height // cell)}"
    src = ffmpeg.input(
        f"life=s={small}:r={spec.fps}:mold=10:life_color={live}:death_color={dead}:mold_color={dead}"
        f":ratio={rng.uniform(0.2, 0.5):.3f}:seed={spec.seed}",
        f="lavfi",
        t=spec.seconds,
    ).video
    # setsar: scaling a different aspect ratio would otherwise record non-square pixels
    return src.filter("scale", spec.width, spec.height, flags="neighbor").filter("setsar", "1")


def _audio_source(spec: VideoSpec, rng: np.random.Generator):
    rate, t = spec.audio_rate, spec.seconds
    if spec.audio == 0:  # tone with tremolo
        src = ffmpeg.input(f"sine=f={rng.uniform(200, 500):.1f}:r={rate}:d={t}", f="lavfi").audio
        return src.filter("tremolo", f=round(float(rng.uniform(2, 6)), 2), d=0.6).filter("volume", 0.5)
    return ffmpeg.input(
        f"anoisesrc=c=pink:r={rate}:a={rng.uniform(0.1, 0.4):.3f}:seed={spec.seed}:d={t}", f="lavfi"
    ).audio


def _tinted(src, spec: VideoSpec):
    """The grey clips desaturated (timeline editing: one ``hue`` filter enabled on their time spans)."""
    width = spec.seconds / len(spec.tints)
    spans = [f"gte(t,{k * width:.4f})*lt(t,{(k + 1) * width:.4f})" for k, grey in enumerate(spec.tints) if grey]
    return src.filter("hue", s=0, enable="+".join(spans)) if spans else src


def render_video(spec: VideoSpec, path: Path) -> None:
    """Encode one synthetic clip with FFmpeg, bit-exactly for a given FFmpeg build."""
    rng = np.random.default_rng(spec.seed)
    streams = [_tinted(_video_source(spec, rng), spec) if spec.tints else _video_source(spec, rng)]
    kwargs = {
        "vcodec": "libx264",
        "preset": "veryfast",
        "crf": 30,
        "pix_fmt": "yuv420p",
        "threads": 1,
        "map_metadata": -1,
        "fflags": "+bitexact",
        "flags:v": "+bitexact",
    }
    if spec.audio_rate is not None:
        streams.append(_audio_source(spec, rng))
        kwargs |= {"acodec": "aac", "b:a": "64k", "ac": spec.channels, "flags:a": "+bitexact"}
    with atomic_path(path) as tmp:
        out = ffmpeg.output(*streams, str(tmp), f="mp4", t=spec.seconds, **kwargs)
        cmd = out.global_args("-nostdin", "-hide_banner", "-loglevel", "error").compile(overwrite_output=True)
        done = lifetime.run(cmd)  # an encoder that dies with the stage
        if done.returncode != 0:
            raise ffmpeg.Error("ffmpeg", done.stdout, done.stderr)


def plan_interactions(cfg: SampleConfig, specs: list[VideoSpec]) -> Iterator[tuple[str, str, int, int]]:
    """Impressions with click labels: p(click) = sigmoid(user bias + pattern liking + video appeal)."""
    rng = np.random.default_rng([cfg.seed, 1])
    visual = np.array([s.visual for s in specs])
    audio = np.array([s.audio for s in specs])
    heard = np.array([s.audio_rate is not None for s in specs], dtype=float)
    published = np.array([s.published_at for s in specs])
    appeal = rng.normal(0, 0.5, len(specs))
    rows = []
    for u in range(cfg.n_users):
        like_v, like_a = rng.integers(2), rng.integers(2)
        w_v, w_a = rng.uniform(1.0, 2.5, 2)
        bias = rng.normal(-1.0, 0.5)
        seen = rng.choice(len(specs), size=cfg.impressions_per_user, replace=False)
        logit = (
            bias
            + w_v * np.where(visual[seen] == like_v, 1, -1)
            + w_a * heard[seen] * np.where(audio[seen] == like_a, 1, -1)
            + appeal[seen]
        )
        clicks = rng.random(len(seen)) < 1 / (1 + np.exp(-logit))
        when = published[seen] + (rng.random(len(seen)) * (EPOCH + SPAN - published[seen])).astype(np.int64)
        rows += [(f"u{u:04d}", specs[v].video_id, int(t), int(c)) for v, t, c in zip(seen, when, clicks)]
    rows.sort(key=lambda r: (r[2], r[0], r[1]))
    return iter(rows)


def plan_watch(
    cfg: SampleConfig, specs: list[VideoSpec], rows: list[tuple[str, str, int, int]]
) -> list[tuple[str, str, int, int, float, float]]:
    """The impressions ``rows`` (``plan_interactions``) with ``watch_time`` and ``duration`` (seconds).

    The user leaves at the first clip they do not continue; p(continue clip k) = sigmoid(stay + 1.5 click
    + w (+1 if clip k's tint is theirs, else -1)), stay ~ N(1, 0.5), w ~ U(1.5, 3) per user. The watch
    time ends at a uniform point inside the clip left at (the whole video when none is). Its own
    random stream: the clicks of ``rows`` are untouched.
    """
    rng = np.random.default_rng([cfg.seed, 2])
    tints = clip_tints(cfg)
    index = {s.video_id: i for i, s in enumerate(specs)}
    users = sorted({r[0] for r in rows})
    liked = dict(zip(users, rng.integers(0, 2, len(users))))
    weight = dict(zip(users, rng.uniform(1.5, 3.0, len(users))))
    stay = dict(zip(users, rng.normal(1.0, 0.5, len(users))))
    out = []
    for user, video, ts, click in rows:
        v = index[video]
        logit = stay[user] + 1.5 * click + weight[user] * np.where(tints[v] == liked[user], 1.0, -1.0)
        goes_on = rng.random(cfg.clips) < 1 / (1 + np.exp(-logit))  # (clips,)
        watched = int(np.argmin(goes_on)) if not goes_on.all() else cfg.clips  # clips watched through
        seconds = specs[v].seconds
        at = seconds if watched == cfg.clips else (watched + rng.random()) * seconds / cfg.clips
        out.append((user, video, ts, click, round(min(at, seconds), 3), seconds))
    return out


def write_csv(path: Path, header: list[str], rows) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)


def manifest_rows(specs: list[VideoSpec]):
    return [
        (
            s.video_id,
            f"{s.video_id}.mp4",
            s.label,
            VISUAL[s.visual],
            AUDIO[s.audio] if s.audio_rate else "",
            s.published_at,
        )
        for s in specs
    ]


def output_paths(out: str | os.PathLike) -> tuple[Path, Path, Path]:
    out = Path(out)
    return out / "videos", out / "videos" / "manifest.csv", out / "interactions.csv"

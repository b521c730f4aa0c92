from __future__ import annotations

import dataclasses
from collections import Counter

import ffmpeg
import numpy as np

from pipeline.decode.ffmpeg import probe
from pipeline.sample import (
    AUDIO,
    CATEGORIES,
    VISUAL,
    clip_tints,
    plan_interactions,
    plan_videos,
    plan_watch,
    render_video,
)


def test_plan_is_deterministic_balanced_and_varied(params):
    cfg = params.sample
    specs = plan_videos(cfg)
    assert specs == plan_videos(cfg)
    assert specs != plan_videos(dataclasses.replace(cfg, seed=cfg.seed + 1))
    assert Counter(s.label for s in specs) == {c: cfg.n_videos // 4 for c in CATEGORIES}
    assert sum(s.audio_rate is None for s in specs) == round(cfg.no_audio_fraction * cfg.n_videos)
    assert sum(s.seconds * min(cfg.fps) < params.decode.num_frames for s in specs) >= 1  # the short clip
    assert len({(s.width, s.height) for s in specs}) > 3 and len({s.fps for s in specs}) > 2
    for s in specs:  # nuisance factors do not give the category away
        assert s.label == f"{VISUAL[s.visual]}_{AUDIO[s.audio]}"


def test_rendered_clip_matches_its_spec(tmp_path, params):
    spec = dataclasses.replace(
        plan_videos(params.sample)[0], seconds=1.0, width=64, height=48, fps=10.0, audio_rate=22050
    )
    path = tmp_path / "v.mp4"
    render_video(spec, path)
    info = probe(path)
    assert (info.width, info.height, info.n_frames, info.audio_rate) == (64, 48, 10, 22050)
    assert info.sar == 1.0
    render_video(spec, tmp_path / "again.mp4")
    assert path.read_bytes() == (tmp_path / "again.mp4").read_bytes()  # bit-exact for one FFmpeg build


def test_clicks_depend_on_content(params):
    cfg = params.sample
    specs = plan_videos(cfg)
    rows = list(plan_interactions(cfg, specs))
    assert len(rows) == cfg.n_users * cfg.impressions_per_user
    by_id = {s.video_id: s for s in specs}
    assert all(t >= by_id[v].published_at for _, v, t, _ in rows)  # no click before publication
    assert [r[2] for r in rows] == sorted(r[2] for r in rows)
    # Per user, click rates differ between visual patterns far more than chance would make them.
    gaps = []
    for user in {r[0] for r in rows}:
        mine = [(by_id[v].visual, c) for u, v, _, c in rows if u == user]
        rates = [np.mean([c for vis, c in mine if vis == k] or [0.5]) for k in (0, 1)]
        gaps.append(abs(rates[0] - rates[1]))
    assert np.mean(gaps) > 0.3
    assert 0.2 < np.mean([r[3] for r in rows]) < 0.6


def test_grey_clips_are_rendered_desaturated(tmp_path, params):
    """With sample.clip_tint the tint the hidden clip interest depends on is in the frames, clip by clip."""
    spec = dataclasses.replace(
        plan_videos(params.sample)[0], seconds=2.0, width=64, height=48, fps=10.0, audio_rate=None, tints=(0, 1, 1, 0)
    )
    render_video(spec, tmp_path / "v.mp4")
    raw, _ = (
        ffmpeg.input(str(tmp_path / "v.mp4"))
        .output("pipe:", format="rawvideo", pix_fmt="rgb24")
        .run(capture_stdout=True, quiet=True)
    )
    frames = np.frombuffer(raw, np.uint8).reshape(-1, 48, 64, 3).astype(float)
    chroma = np.abs(frames - frames.mean(-1, keepdims=True)).mean((1, 2, 3)).reshape(4, -1).mean(1)  # per clip
    assert chroma[1] < 3 and chroma[2] < 3 and chroma[0] > 10 and chroma[3] > 10
    assert plan_videos(params.sample)[0].tints == ()  # the default corpus renders no tint


def test_watch_times_follow_the_hidden_clip_interest_and_keep_the_clicks(params):
    cfg = dataclasses.replace(params.sample, n_users=60)
    specs = plan_videos(cfg)
    rows = list(plan_interactions(cfg, specs))
    watched = plan_watch(cfg, specs, rows)
    assert [w[:4] for w in watched] == rows  # clicks as before
    by_id = {s.video_id: s for s in specs}
    assert all(0 <= w <= d == by_id[v].seconds for _, v, _, _, w, d in watched)
    ratio = np.array([w / d for *_, w, d in watched])
    click = np.array([r[3] for r in rows])
    assert ratio[click == 1].mean() > ratio[click == 0].mean() + 0.1  # clicked videos are watched longer
    # Per user, the first clip's tint splits how often they leave at it (their liked tint is hidden).
    tints = clip_tints(cfg)
    gaps = []
    for user in {r[0] for r in rows}:
        mine = [(tints[int(v[1:]), 0], r < 1 / cfg.clips) for (u, v, *_), r in zip(watched, ratio) if u == user]
        rates = [np.mean([left for t, left in mine if t == k] or [0.5]) for k in (0, 1)]
        gaps.append(abs(rates[0] - rates[1]))
    assert np.mean(gaps) > 0.3

from __future__ import annotations

import dataclasses
from collections import Counter

import numpy as np

from pipeline.decode.ffmpeg import probe
from pipeline.sample import AUDIO, CATEGORIES, VISUAL, plan_interactions, plan_videos, render_video


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

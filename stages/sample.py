"""Stage ``sample``: render the built-in synthetic corpus (see ``pipeline.sample``).

Reads params ``sample.*`` and ``paths.sample``; writes ``<paths.sample>/videos/`` (clips and
manifest.csv) and ``<paths.sample>/interactions.csv`` (with each impression's watch time and the video's
duration, FRAME's clip-level feedback).
"""

from __future__ import annotations

import logging
import sys

from pipeline import sample
from pipeline.core.cli import progress, run_stage
from pipeline.core.config import ConfigError
from pipeline.execution.pools import bounded_map, resolve_workers
from pipeline.params import load_params

log = logging.getLogger("stage.sample")


def main() -> None:
    params = load_params()
    cfg = params.sample
    videos_dir, manifest_path, log_path = sample.output_paths(params.paths.sample)
    specs = sample.plan_videos(cfg)
    videos_dir.mkdir(parents=True, exist_ok=True)
    jobs = bounded_map(lambda s: sample.render_video(s, videos_dir / f"{s.video_id}.mp4"), specs, resolve_workers(0))
    for _ in progress(jobs, len(specs), "sample"):
        pass
    sample.write_csv(
        manifest_path, ["video_id", "path", "label", "visual", "audio", "published_at"], sample.manifest_rows(specs)
    )
    rows = sample.plan_watch(cfg, specs, list(sample.plan_interactions(cfg, specs)))
    sample.write_csv(log_path, ["user_id", "video_id", "timestamp", "label", "watch_time", "duration"], rows)
    log.info("wrote %d synthetic videos to %s and the interaction log %s", len(specs), videos_dir, log_path)


if __name__ == "__main__":
    sys.exit(run_stage(main, (ConfigError,)))

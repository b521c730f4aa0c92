"""Stage ``audio``: clip-level audio features of every decoded video.

Reads the decoded store (``paths.decoded``, audio only, never frames) and params ``audio.*``;
writes ``paths.audio_features`` (columns in ``pipeline.audio_store``) and ``paths.audio_failures``.
Videos without audio get zero vectors and ``has_audio = false``.
"""
from __future__ import annotations

import logging
import sys
from functools import partial

from pipeline import audio, audio_store, decoded, failures, store
from pipeline.config import ConfigError
from pipeline.params import load_params
from pipeline.runtime import bounded_process_map, progress, resolve_workers, run_stage

log = logging.getLogger("stage.audio")


def main() -> None:
    params = load_params()
    cfg = params.audio
    root = params.paths.decoded
    index = decoded.read_index(root)
    meta = decoded.read_meta(root)
    source_rate = int(meta["audio_rate"])
    if source_rate != cfg.sample_rate:
        log.warning("decoded audio is %d Hz, audio.sample_rate is %d Hz: resampling with librosa (%s)%s",
                    source_rate, cfg.sample_rate, audio.RESAMPLE_TYPE,
                    "; upsampling adds no information" if cfg.sample_rate > source_rate else "")
    workers = resolve_workers(cfg.workers)
    log.info("feature sets %s at %d Hz, %d worker(s); librosa is warmed up once per run, not per video",
             audio.enabled(cfg), cfg.sample_rate, workers)
    videos = decoded.iter_decoded(root, frames=False, audio=True)
    extract = partial(audio_store.extract_video, cfg=cfg, source=str(root))
    results = bounded_process_map(extract, videos, workers, initializer=audio.warm_up, initargs=(cfg,),
                                  preload=("pipeline.audio_preload",))
    rows, failed = [], []
    for result in progress(results, index.num_rows, "audio"):
        if isinstance(result, failures.Failure):
            failed.append(result)
            log.warning("skipped %s (%s): %s", result.video_id, result.reason, result.message)
        else:
            rows.append(result)
    out = params.paths.audio_features
    table = audio_store.to_table(rows, cfg)
    store.write_table(table, out, audio_store.store_meta(cfg, source_rate, meta.get("params_hash")))
    failures.write(failed, params.paths.audio_failures, "audio")
    n_audio = sum(bool(r["has_audio"]) for r in rows)
    log.info("audio features of %d videos (%d with audio, %d without), %d failures -> %s",
             len(rows), n_audio, len(rows) - n_audio, len(failed), out)
    failures.check_rate(len(failed), index.num_rows, cfg.max_failure_rate, "audio", params.paths.audio_failures)


if __name__ == "__main__":
    sys.exit(run_stage(main, (ConfigError, store.StoreError, failures.FailureRateExceeded)))

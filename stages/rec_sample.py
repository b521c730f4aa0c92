"""Stage ``rec_sample``: generate the built-in synthetic top-K dataset (see ``pipeline.rec.synthetic``).

Reads params ``rec_sample.*`` (``profile``: ``realistic`` or ``easy``, each its own section) and
``paths.rec_sample``; writes ``<paths.rec_sample>/<name>.inter`` and one ``<modality>_feat.npy`` per
modality (MMRec's layout: ``rec_data.source: mmrec`` reads it).
"""

from __future__ import annotations

import logging
import sys

import numpy as np

from pipeline.core.cli import run_stage
from pipeline.core.config import ConfigError
from pipeline.params import load_params
from pipeline.rec import synthetic

log = logging.getLogger("stage.rec_sample")


def main() -> None:
    params = load_params()
    cfg = params.rec_sample
    data = synthetic.generate(cfg)
    synthetic.write(data, params.paths.rec_sample, cfg.name)
    profile = cfg.easy if cfg.profile == "easy" else cfg.realistic
    log.info(
        "%s profile: wrote %d interactions (train/valid/test %s) of %d users x %d items, %d cold items, "
        "modalities %s to %s",
        cfg.profile,
        len(data.user),
        np.bincount(data.split, minlength=3).tolist(),
        profile.n_users,
        profile.n_items,
        int(data.cold.sum()),
        {m: x.shape[1] for m, x in data.features.items()},
        params.paths.rec_sample,
    )


if __name__ == "__main__":
    sys.exit(run_stage(main, (ConfigError,)))

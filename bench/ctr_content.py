"""Does content earn its place in the CTR models? Both synthetic profiles of ``rec_sample`` (issue 23's
realistic one and the easy one), read as a public dataset would be (MMRec layout, its own ``*_feat.npy``),
through the stages' own code: ``ctr_data``'s samples and item features (fitted on training items), then
``ctr_train``'s experiment, with ``ctr.use_content`` false and true, 3 seeds, mean ± std.

Columns: validation AUC (what early stopping and a sweep choose on), test AUC, logloss, and the AUC among
the test samples of cold items (never a training positive), with the number of cold test samples.

    python bench/ctr_content.py [--models deepfm din amfr mmie] [--seeds 0 1 2] [--profiles realistic easy]
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import tempfile

import torch
from report import Report, cpu_name, run_seeds, seed_cells, usable_cores

from pipeline.core import store
from pipeline.ctr.build import FEATURES, build_samples, features_meta, item_features, write_built
from pipeline.ctr.experiment import load_dataset, run
from pipeline.datasets import read_source
from pipeline.params import CtrFeatures, load_params
from pipeline.rec import synthetic

REPORT = Report()
emit = REPORT.emit


def dataset(profile: str, params) -> str:
    """The profile written in the MMRec layout, then ctr_data's tables and item features; the folder."""
    src = tempfile.mkdtemp(prefix=f"ctr_{profile}_src_")
    sample = dataclasses.replace(params.rec_sample, profile=profile)
    synthetic.write(synthetic.generate(sample), src, sample.name)
    cfg = dataclasses.replace(params.ctr_data, source="mmrec", path=src, features=CtrFeatures((), (), ()))
    raw = read_source("mmrec", src, cfg.label)
    built = build_samples(raw, cfg)
    out = tempfile.mkdtemp(prefix=f"ctr_{profile}_")
    write_built(built, out, {"ctr_data": cfg})
    features, _ = item_features(raw, built, cfg)
    store.write_table(features, f"{out}/{FEATURES}", features_meta(features, cfg, raw.reduced))
    s = built.summary
    emit(
        f"\n**{profile} profile**: train {s['train_samples']} / valid {s['valid_samples']} / test "
        f"{s['test_samples']} samples ({s['test_cold_samples']} on cold items), {s['users']} users x "
        f"{s['items']} items, {cfg.negatives} sampled negatives per positive; ctr.* from params.yaml "
        "(content: every modality of the dataset)\n"
    )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["deepfm", "din", "amfr", "mmie"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--profiles", nargs="+", default=["realistic", "easy"])
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--content", choices=["both", "no", "yes"], default="both", help="which rows to run")
    ap.add_argument("--out", default="bench/out/ctr_content.md", help="the report file (parallel runs: one each)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    params = load_params()
    torch.set_num_threads(params.ctr.threads or 1)
    emit(
        f"machine: {cpu_name()}, {usable_cores()} cores usable, torch {torch.__version__} ({torch.get_num_threads()} threads); load {os.getloadavg()[0]:.1f}"
    )
    for profile in args.profiles:
        data = load_dataset(dataset(profile, params))
        emit("| model | content | valid AUC | test AUC | logloss | cold-item AUC | epochs | s/run |")
        emit("|---|---|---|---|---|---|---|---|")
        for name in args.models:
            for content in {"both": (False, True), "no": (False,), "yes": (True,)}[args.content]:
                runs, seconds = run_seeds(
                    lambda seed, name=name, content=content, data=data: run(
                        dataclasses.replace(
                            params.ctr,
                            model=name,
                            use_content=content,
                            content=(),
                            seed=seed,
                            epochs=args.epochs or params.ctr.epochs,
                        ),
                        data,
                    )[1],
                    args.seeds,
                )
                cells = seed_cells(runs, seconds, ("auc", "logloss", "cold_auc"))
                emit(f"| {name} | {'yes' if content else 'no'} | " + " | ".join(cells) + " |")
    emit(f"\nload average at the end: {os.getloadavg()[0]:.1f}")
    REPORT.save(args.out)


if __name__ == "__main__":
    main()

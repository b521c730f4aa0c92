"""CTR speed benchmark: this project's deepfm / din / mmie vs deepctr-torch (DeepFM / DIN / DIEN-AUGRU).

Generates ``--samples`` samples (default 1M) with 10 categorical fields (user, item + 8 others), a
``--history``-item behaviour sequence and a 240-d content vector per item (planted click model),
written once as Parquet in the ctr_data layout. Each (library, model) runs in its own process
(peak RSS is per process): load the Parquet, train ``--steps`` steps of ``--batch`` samples (Adam,
same embedding size, MLP, learning rate), then score ``--test`` held-out samples. Reports training and
inference samples/s, test AUC after those steps, peak RSS, and our loader's share of step time
(batch slicing / whole step). Needs the ``bench`` extra (``pip install -e .[bench]``).

    python bench/ctr.py [--samples 1000000] [--steps 300] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out" / "ctr_bench"
CATS = (10, 20, 50, 100, 200, 500, 1000, 5000)  # the 8 fields beside user and item
N_USERS, N_ITEMS, CONTENT_DIM, EMBED, MLP, LR = 100_000, 50_000, 240, 16, (256, 128), 1e-3
PAIRS = {"deepfm": "DeepFM", "din": "DIN", "mmie": "DIEN"}


def generate(n: int, history: int, seed: int = 0) -> None:
    from pipeline.core import store

    rng = np.random.default_rng(seed)
    z_item = rng.normal(size=(N_ITEMS + 1, 8)).astype(np.float32)
    z_user = rng.normal(size=(N_USERS + 1, 8)).astype(np.float32)
    content = (z_item @ rng.normal(size=(8, CONTENT_DIM)) + rng.normal(0, 1, (N_ITEMS + 1, CONTENT_DIM))).astype(
        np.float32
    )
    user, item = rng.integers(1, N_USERS + 1, n), rng.integers(1, N_ITEMS + 1, n)
    cats = np.stack([rng.integers(1, c, n) for c in CATS], 1)  # (N, 8)
    effects = [rng.normal(0, 0.5, c) for c in CATS]
    logit = (z_user[user] * z_item[item]).sum(1) / 2 + sum(e[cats[:, k]] for k, e in enumerate(effects)) - 0.5
    label = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int8)
    hist_len = rng.integers(0, history + 1, n)
    hist = rng.integers(1, N_ITEMS + 1, (n, history)) * (np.arange(history) < hist_len[:, None])  # (N, H)
    table = pa.table(
        {
            "user": user.astype(np.int32),
            "item": item.astype(np.int32),
            "label": label,
            "timestamp": np.arange(n),
            "hist": pa.FixedSizeListArray.from_arrays(pa.array(hist.reshape(-1).astype(np.int32)), history),
            "hist_len": hist_len.astype(np.int32),
            "cold": np.zeros(n, bool),
            **{f"c_f{k}": cats[:, k].astype(np.int32) for k in range(len(CATS))},
        }
    )
    OUT.mkdir(parents=True, exist_ok=True)
    meta = store.make_meta(
        "ctr_data",
        spec={
            "n_users": N_USERS + 1,
            "n_items": N_ITEMS + 1,
            "history": history,
            "categorical": {f"f{k}": c for k, c in enumerate(CATS)},
            "multi": {},
            "numeric": [],
        },
    )
    store.write_table(table, OUT / "samples.parquet", meta)
    np.save(OUT / "content.npy", content)


def auc(y, p) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, p))


def ours(model: str, args) -> dict:
    import torch

    from models.ctr import build
    from models.ctr.base import FeatureSpec
    from pipeline.core import store
    from pipeline.ctr.train import model_sizes, predict, slice_batch, table_tensors
    from pipeline.params import CtrConfig, CtrFrameConfig, CtrSessionConfig, CtrTrendConfig

    t0 = time.perf_counter()
    table = store.read_table(OUT / "samples.parquet")
    meta = store.read_meta(OUT / "samples.parquet")["spec"]
    data = table_tensors(table, meta)
    load_s = time.perf_counter() - t0
    spec = FeatureSpec.from_meta(meta)
    content = torch.from_numpy(np.load(OUT / "content.npy"))
    cfg = CtrConfig(
        model=model,
        use_content=True,
        content=("content",),
        embed_dim=EMBED,
        mlp=MLP,
        heads=2,
        attention_dim=64,
        dropout=0.0,
        lr=LR,
        weight_decay=0.0,
        batch_size=args.batch,
        epochs=1,
        patience=1,
        warmup=0,
        monitor="auc",
        id_dropout=0.0,
        sessions=CtrSessionConfig(gap_s=1800, length=5, count=10),
        trends=CtrTrendConfig(
            count=4, routing_iterations=3, neighbours=10, future=20, use_future=True, time_attention=True
        ),  # unused: dmr is not in this speed comparison
        frame=CtrFrameConfig(clip_weight=1.0),  # unused: frame is not in this speed comparison
        seed=0,
        threads=args.threads,
    )
    torch.manual_seed(0)
    net = build(model, spec, model_sizes(cfg), {"content": (content, torch.ones(len(content), dtype=torch.bool))})
    opt = torch.optim.Adam(net.parameters(), lr=LR, fused=True)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    n_train = len(data["label"]) - args.test
    perm = torch.randperm(n_train, generator=torch.Generator().manual_seed(0))
    slicing = 0.0
    t0 = time.perf_counter()
    for s in range(args.steps):
        a = time.perf_counter()
        batch = slice_batch(data, perm[s * args.batch : (s + 1) * args.batch])
        slicing += time.perf_counter() - a
        loss = loss_fn(net(batch), batch["label"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    train_s = time.perf_counter() - t0
    test = slice_batch(data, torch.arange(n_train, len(data["label"])))
    t0 = time.perf_counter()
    p = predict(net, test, 4096)
    infer_s = time.perf_counter() - t0
    return {
        "train_sps": args.steps * args.batch / train_s,
        "infer_sps": args.test / infer_s,
        "auc": auc(test["label"].numpy(), p),
        "loader_share": slicing / train_s,
        "parquet_load_s": load_s,
    }


def deepctr(model: str, args) -> dict:
    import torch
    from deepctr_torch import models
    from deepctr_torch.inputs import DenseFeat, SparseFeat, VarLenSparseFeat

    from pipeline.core import store

    t0 = time.perf_counter()
    table = store.read_table(OUT / "samples.parquet")
    content = np.load(OUT / "content.npy")
    n_train = table.num_rows - args.test
    used = np.r_[np.arange(args.steps * args.batch), np.arange(n_train, table.num_rows)]  # deepctr materialises x
    col = {c: table.column(c).to_numpy(zero_copy_only=False)[used] for c in table.column_names if c != "hist"}
    hist = store.vectors(table.column("hist"))[used]
    x = {
        "user": col["user"],
        "item": col["item"],
        **{f"c_f{k}": col[f"c_f{k}"] for k in range(len(CATS))},
        "content": content[col["item"]],
        "hist_item": hist,
        "seq_length": col["hist_len"],
    }
    load_s = time.perf_counter() - t0
    feats = [SparseFeat("user", N_USERS + 1, EMBED), SparseFeat("item", N_ITEMS + 1, EMBED)]
    feats += [SparseFeat(f"c_f{k}", c, EMBED) for k, c in enumerate(CATS)] + [DenseFeat("content", CONTENT_DIM)]
    if model != "deepfm":
        feats.append(
            VarLenSparseFeat(
                SparseFeat("hist_item", N_ITEMS + 1, EMBED, embedding_name="item"),
                maxlen=hist.shape[1],
                length_name="seq_length",
            )
        )
    if model == "deepfm":
        net = models.DeepFM(feats, feats, dnn_hidden_units=MLP, seed=0)
    elif model == "din":
        net = models.DIN(feats, ["item"], dnn_hidden_units=MLP, seed=0)
    else:
        net = models.DIEN(feats, ["item"], gru_type="AUGRU", dnn_hidden_units=MLP, seed=0)
    net.compile(torch.optim.Adam(net.parameters(), lr=LR), "binary_crossentropy")
    k = args.steps * args.batch
    train_x = {name: v[:k] for name, v in x.items()}
    test_x = {name: v[k:] for name, v in x.items()}
    t0 = time.perf_counter()
    net.fit(train_x, col["label"][:k].astype(np.float32), batch_size=args.batch, epochs=1, verbose=0)
    train_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    p = net.predict(test_x, batch_size=4096).reshape(-1)
    infer_s = time.perf_counter() - t0
    return {
        "train_sps": k / train_s,
        "infer_sps": args.test / infer_s,
        "auc": auc(col["label"][k:], p),
        "loader_share": None,
        "parquet_load_s": load_s,
    }


def worker(lib: str, model: str, args) -> None:
    import torch

    torch.set_num_threads(args.threads)
    res = (ours if lib == "ours" else deepctr)(model, args)
    res["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(res))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=int, default=1_000_000)
    ap.add_argument("--test", type=int, default=100_000)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--history", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--models", nargs="+", default=list(PAIRS))
    ap.add_argument("--worker", nargs=2, metavar=("LIB", "MODEL"))
    args = ap.parse_args()
    if args.worker:
        return worker(*args.worker, args)
    if args.steps * args.batch > args.samples - args.test:
        ap.error("--steps x --batch exceeds the training samples")
    t0 = time.perf_counter()
    generate(args.samples, args.history)
    print(f"generated {args.samples} samples in {time.perf_counter() - t0:.1f} s", flush=True)
    rows = [
        "| model | library | train samples/s | inference samples/s | test AUC | peak RSS MB | loader share | speed-up (train / infer) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for model in args.models:
        res = {}
        for lib in ("ours", "deepctr-torch"):
            cmd = [sys.executable, __file__, "--worker", lib, model, *sys.argv[1:]]
            done = subprocess.run(cmd, capture_output=True, text=True)
            line = [ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")]
            if done.returncode or not line:
                print(f"{lib} {model} failed:\n{done.stderr[-2000:]}", flush=True)
                continue
            res[lib] = json.loads(line[0][7:])
        for lib, r in res.items():
            name = model if lib == "ours" else f"{PAIRS[model]}"
            ratio = ""
            if lib == "ours" and "deepctr-torch" in res:
                o = res["deepctr-torch"]
                ratio = f"{r['train_sps'] / o['train_sps']:.1f}x / {r['infer_sps'] / o['infer_sps']:.1f}x"
            share = "" if r["loader_share"] is None else f"{100 * r['loader_share']:.1f}%"
            rows.append(
                f"| {name} | {lib} | {r['train_sps']:,.0f} | {r['infer_sps']:,.0f} | {r['auc']:.4f} | "
                f"{r['peak_rss_mb']:,.0f} | {share} | {ratio} |"
            )
            print(rows[-1], flush=True)
    text = (
        f"{args.samples:,} samples (train {args.steps} steps x {args.batch}, test {args.test:,}), 10 categorical "
        f"fields, {CONTENT_DIM}-d content, history {args.history}, {args.threads} threads\n\n" + "\n".join(rows) + "\n"
    )
    (OUT.parent / "ctr_bench.md").write_text(text)
    print("\n" + text)


if __name__ == "__main__":
    main()

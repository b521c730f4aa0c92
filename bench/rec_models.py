"""Top-K model speed: seconds per training epoch and per full scoring of every user, for each model in
``models.rec.MODELS``, on a generated problem (default 5,000 users x 5,000 items x 100,000 edges, two
content modalities of 128 and 64 dims that are noisy projections of the items' latent factors).

An epoch is one pass over the edges in batches of ``--batch`` positives with ``model.negatives`` uniform
negatives each (Adam), timed with a minimal loop of this script's own: it times the models, not the
pipeline's training loop (``rec_train``). Every model is built first, then they train side by side, one
step of each in turn on the same batch, and each model's fastest epoch (the sum of its steps' seconds)
is reported: ``x lightgcn`` is the epoch against LightGCN's, timed in the same seconds of the run. A
content model's cold scorer, which the pipeline trains before the model (``fit_cold_scorer``), is timed
as a run of its own in the same rounds. Evaluation = ``refresh()`` plus ``ranked_scores`` for all users
in batches of 1,024 (the full-ranking matrix, without top-K; a content model's profile blended in at
``--profile-weight``, its cold items placed). Each model is built with its own defaults for
``rec.mlp`` and ``rec.dropout`` (what the stage builds from params.yaml's nulls), with its content on (a
staged model's second phase). Prints a Markdown table and the machine.

    python bench/rec_models.py [--users 5000 --items 5000 --edges 100000] [--threads 1] [--device cpu] [--models a,b] [--profile-weight 0.5]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from dataclasses import replace

import torch

from models.rec import MODELS, build
from models.rec.base import Graph, RecSizes


def problem(n_users: int, n_items: int, n_edges: int, seed: int = 0):
    """Power-law item popularity, latent-factor tastes; content = noisy projections of the item factors."""
    g = torch.Generator().manual_seed(seed)
    z_u, z_i = torch.randn(n_users, 16, generator=g), torch.randn(n_items, 16, generator=g)
    popularity = (torch.arange(1, n_items + 1).float() ** -0.8)[torch.randperm(n_items, generator=g)]
    users = torch.randint(0, n_users, (3 * n_edges,), generator=g)
    items = torch.multinomial(popularity, 3 * n_edges, replacement=True, generator=g)
    keep = (z_u[users] * z_i[items]).sum(1) > 0  # users interact with items that match their taste
    pairs = torch.unique(torch.stack([users[keep], items[keep]]), dim=1)[:, :n_edges]
    content = {
        name: (
            (z_i @ torch.randn(16, d, generator=g)) + torch.randn(n_items, d, generator=g),
            torch.ones(n_items, dtype=torch.bool),
        )
        for name, d in (("visual", 128), ("audio", 64))
    }
    return Graph(pairs[0], pairs[1]), content


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, torch {torch.__version__}"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Timed:
    """One model (or cold scorer) being timed: its loss, an Adam optimiser and each epoch's seconds."""

    def __init__(self, loss_fn, params, negatives: int):
        self.loss_fn, self.negatives = loss_fn, negatives
        self.opt = torch.optim.Adam(params, lr=1e-3)
        self.times: list[float] = []

    def step(self, users, pos, n_items: int, device) -> float:
        """One batch: loss, backward, Adam step; returns its seconds."""
        neg = torch.randint(0, n_items, (users.shape[0], self.negatives), device=device)
        sync(device)
        start = time.perf_counter()
        loss = self.loss_fn(users, pos, neg)
        self.opt.zero_grad()
        (loss.rank + 1e-4 * loss.l2).backward()
        self.opt.step()
        sync(device)
        return time.perf_counter() - start


def interleaved_epochs(runs: list[Timed], users, items, n_items: int, batch: int, device, epochs: int) -> None:
    """``epochs`` passes over the edges in batches; every batch is a step of each run in turn, so a burst
    of load on a shared machine slows every model alike and the ratios between them hold."""
    for _ in range(epochs):
        spent = [0.0] * len(runs)
        order = torch.randperm(users.shape[0], device=device)
        for s in range(0, order.shape[0], batch):
            idx = order[s : s + batch]
            for k, run in enumerate(runs):
                spent[k] += run.step(users[idx], items[idx], n_items, device)
        for run, seconds in zip(runs, spent):
            run.times.append(seconds)


def scoring_seconds(model, n_users: int, device, profile_weight: float) -> float:
    """What the loop's rankings score: ``ranked_scores``, a content model's profile blended in at
    ``profile_weight`` and its cold items placed (an arbitrary placement: fitting one costs the same)."""
    model.eval()
    if model.cold_scorer is not None:
        model.profile_weight.fill_(profile_weight)
        model.cold_affine.copy_(torch.tensor([1.0, 0.0, 0.5]))
    sync(device)
    start = time.perf_counter()
    with torch.no_grad():
        model.refresh()
        for s in range(0, n_users, 1024):
            model.ranked_scores(torch.arange(s, min(s + 1024, n_users), device=device))
    sync(device)
    return time.perf_counter() - start


def bench(
    names: list[str],
    graph: Graph,
    content,
    sizes: RecSizes,
    batch: int,
    device: torch.device,
    epochs: int,
    profile_weight: float = 0.5,
):
    """Per model: build seconds, the fastest epoch, the cold scorer's fastest epoch, full scoring seconds.

    The models train side by side, a step of each in turn (``interleaved_epochs``)."""
    built, models, timed = {}, {}, {}
    for name in names:
        torch.manual_seed(0)
        start = time.perf_counter()
        cls = MODELS.get(name)  # the model's own defaults for rec.mlp and rec.dropout, as the stage builds it
        models[name] = build(name, replace(sizes, mlp=cls.mlp, dropout=cls.dropout), graph, content).to(device)
        built[name] = time.perf_counter() - start
        model = models[name]
        scorer = set(model.cold_scorer.parameters()) if model.cold_scorer is not None else set()
        if model.trainable:  # the scorer trains in its own loop after the model (fit_cold_scorer)
            model.train()
            timed[name] = Timed(model.loss, [p for p in model.parameters() if p not in scorer], model.negatives)
        if scorer:
            timed[name + " cold"] = Timed(model.cold_scorer.loss, list(scorer), 1)
    users, items = graph.users.to(device), graph.items.to(device)
    interleaved_epochs(list(timed.values()), users, items, sizes.n_items, batch, device, epochs)
    nan = float("nan")
    return {
        name: (
            built[name],
            min(timed[name].times) if name in timed else nan,
            min(timed[name + " cold"].times) if name + " cold" in timed else nan,
            scoring_seconds(models[name], sizes.n_users, device, profile_weight),
        )
        for name in names
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--users", type=int, default=5000)
    ap.add_argument("--items", type=int, default=5000)
    ap.add_argument("--edges", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=2048)
    ap.add_argument("--epochs", type=int, default=3, help="timed epochs per model (the fastest is reported)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--models", default=",".join(MODELS.names()))
    ap.add_argument("--profile-weight", type=float, default=0.5, help="content models' rec.profile_weight")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    import torch_geometric.nn  # noqa: F401  (imported once here, so no model's build time includes it)

    device = torch.device(args.device)
    graph, content = problem(args.users, args.items, args.edges)
    sizes = RecSizes(n_users=args.users, n_items=args.items)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {args.threads} thread(s)"
    print(f"{args.users} users x {args.items} items x {graph.users.shape[0]} edges, batch {args.batch}, {where}")
    print(f"machine: {machine()}\n")
    print("| model | negatives | build s | s / epoch | x lightgcn | cold scorer s / epoch | full scoring s |")
    print("|---|---|---|---|---|---|---|")
    names = args.models.split(",")
    results = bench(names, graph, content, sizes, args.batch, device, args.epochs, args.profile_weight)
    base = results["lightgcn"][1] if "lightgcn" in results else None
    for name, (built, epoch, cold, scoring) in results.items():
        cls = MODELS.get(name)
        negatives, per_epoch = (cls.negatives, f"{epoch:.2f}") if cls.trainable else ("–", "– (no training)")
        ratio = f"{epoch / base:.2f}" if base and cls.trainable else "–"
        cold_s = "–" if cold != cold else f"{cold:.2f}"  # NaN: no cold scorer
        print(f"| {name} | {negatives} | {built:.2f} | {per_epoch} | {ratio} | {cold_s} | {scoring:.2f} |", flush=True)


if __name__ == "__main__":
    main()

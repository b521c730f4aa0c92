"""Every top-K model on a tiny generated problem: shapes, gradients, training, save/load, cold items, plus
the graph normalisation against a dense reference and MetaMMF's item-specific fusion."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from models.layers import (
    CPMetaLinear,
    LightPropagation,
    MetaLinear,
    RowsMatmul,
    SparseMatmul,
    bipartite_edges,
    csr_block,
    csr_rows,
    knn_adjacency,
    sparse_adjacency,
    transpose_csr,
)
from models.rec import MODELS, build
from models.rec.base import Graph, RecSizes, bpr, warm_stats
from models.rec.zoo._common import ContentOnLightGcn, ContentProfile, stacked_content
from models.rec.zoo.lgmrec import CL_ROWS, CL_WEIGHT, info_nce

N_USERS, N_ITEMS, COLD = 12, 16, (14, 15)  # items 14 and 15 have no training edge
SIZES = RecSizes(n_users=N_USERS, n_items=N_ITEMS, embed_dim=8, layers=2, mlp=(8, 6), rank=2, knn=3)
CONTENT_MODELS = ["freedom", "lgmrec", "metammf", "metammf_cp", "mmgcn", "vbpr"]
TRAINABLE = [n for n in MODELS.names() if n != "pop"]


def graph() -> Graph:
    g = torch.Generator().manual_seed(0)
    users = torch.arange(N_USERS).repeat_interleave(4)
    items = (users % 2) * 7 + torch.randint(0, 7, (4 * N_USERS,), generator=g)  # two taste groups, items 0..13
    pairs = torch.unique(torch.stack([users, items]), dim=1)
    return Graph(pairs[0], pairs[1])


def content() -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(1)
    group = (torch.arange(N_ITEMS) >= 7).float().unsqueeze(1)
    vis = torch.randn(N_ITEMS, 6, generator=g) + 3 * group
    aud = torch.randn(N_ITEMS, 3, generator=g)
    aud_mask = torch.ones(N_ITEMS, dtype=torch.bool)
    aud_mask[[2, 15]] = False  # no audio for items 2 and 15 (15 is also cold)
    return {"visual": (vis, torch.ones(N_ITEMS, dtype=torch.bool)), "audio": (aud * aud_mask.unsqueeze(1), aud_mask)}


def make(name: str, seed: int = 0, sizes: RecSizes = SIZES, feats=None):
    torch.manual_seed(seed)
    return build(name, sizes, graph(), content() if feats is None else feats)


def batch(model, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    gr = graph()
    pick = torch.randint(0, gr.users.shape[0], (24,), generator=g)
    neg = torch.randint(0, N_ITEMS, (24, model.negatives), generator=g)
    return gr.users[pick], gr.items[pick], neg


def total(loss) -> torch.Tensor:
    return loss.rank + 1e-3 * loss.l2


@pytest.mark.parametrize("name", MODELS.names())
def test_scores_have_one_finite_row_per_user(name):
    model = make(name).eval()
    model.refresh()
    out = model.scores(torch.tensor([0, 3, 11]))
    assert out.shape == (3, N_ITEMS) and torch.isfinite(out).all()


@pytest.mark.parametrize("name", TRAINABLE)
def test_backward_gives_finite_grads_and_adam_lowers_the_loss(name):
    model = make(name).train()
    users, pos, neg = batch(model)
    assert neg.shape == (24, model.negatives)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    losses = []
    for _ in range(15):
        loss = total(model.loss(users, pos, neg))
        opt.zero_grad()
        loss.backward()
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        assert grads and all(torch.isfinite(g).all() for g in grads)
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.9 * losses[0], losses


@pytest.mark.parametrize("name", MODELS.names())
def test_state_dict_round_trip_gives_identical_scores_and_refresh_is_deterministic(name, tmp_path):
    model = make(name, seed=0)
    if model.trainable:  # move away from the init so that a reinitialised copy would differ
        opt = torch.optim.Adam(model.parameters(), lr=0.05)
        for _ in range(3):
            opt.zero_grad()
            total(model.loss(*batch(model))).backward()
            opt.step()
    torch.save(model.state_dict(), tmp_path / "m.pt")
    loaded = make(name, seed=1)
    loaded.load_state_dict(torch.load(tmp_path / "m.pt", weights_only=True))
    users = torch.arange(N_USERS)
    model.eval().refresh()
    loaded.eval().refresh()
    first = model.scores(users)
    assert torch.equal(first, loaded.scores(users))
    model.refresh()
    assert torch.equal(first, model.scores(users))


ODD = RecSizes(n_users=N_USERS, n_items=N_ITEMS, embed_dim=6, layers=0, mlp=(10,), rank=1, knn=50, dropout=1.0)


@pytest.mark.parametrize("name", MODELS.names())
@pytest.mark.parametrize("sizes", [ODD, RecSizes(**{**ODD.__dict__, "layers": 3, "mlp": (4, 3, 2), "dropout": 0.9})])
def test_edge_sizes_still_train_and_score(name, sizes):
    """No propagation layer, an MLP wider than the embedding, all edges pruned, k above the item count."""
    model = make(name, sizes=sizes)
    if model.trainable:
        loss = model.loss(*batch(model))
        (loss.rank + loss.l2).backward()
    model.eval().refresh()
    out = model.scores(torch.tensor([0, 5]))
    assert out.shape == (2, N_ITEMS) and torch.isfinite(out).all()
    if name == "neumf":  # the split scoring path agrees with the pairwise one whatever the widths
        assert torch.allclose(out, model.logits(torch.tensor([0, 5]), torch.arange(N_ITEMS).expand(2, -1)), atol=1e-5)


@pytest.mark.parametrize("name", CONTENT_MODELS)
def test_cold_items_are_ranked_from_content_not_their_id_row(name):
    model = make(name).eval()
    model.cold_affine.copy_(torch.tensor([1.0, 0.0, 0.0]))  # calibrated: cold items ranked by the content scorer
    model.refresh()
    before = model.ranked_scores(torch.arange(N_USERS))
    with torch.no_grad():
        for p in model.parameters():  # scramble every item ID row of the cold items
            if p.dim() and p.shape[0] == N_ITEMS:
                p[list(COLD)] = torch.randn(len(COLD), *p.shape[1:]) * 5
    model.refresh()
    assert torch.equal(before, model.ranked_scores(torch.arange(N_USERS)))
    feats = content()
    feats["visual"][0][COLD[0]] *= -1.0  # ... while their content does move them
    moved = make(name, feats=feats).eval()
    moved.cold_affine.copy_(torch.tensor([1.0, 0.0, 0.0]))
    moved.refresh()
    assert not torch.allclose(before[:, COLD[0]], moved.ranked_scores(torch.arange(N_USERS))[:, COLD[0]])


def scored(name: str):
    """A fresh content model in eval mode, every user, their scores and the model's cold mask."""
    model = make(name).eval()
    model.refresh()
    users = torch.arange(N_USERS)
    return model, users, model.scores(users), model.cold


def zscore(x: torch.Tensor) -> torch.Tensor:
    return (x - x.mean(1, keepdim=True)) / x.std(1, correction=0, keepdim=True)


@pytest.mark.parametrize("name", CONTENT_MODELS)
def test_cold_items_are_placed_on_each_users_warm_scale(name):
    model, users, s, cold = scored(name)
    assert torch.equal(cold, torch.bincount(graph().items, minlength=N_ITEMS) == 0) and cold[list(COLD)].all()
    assert torch.equal(model.ranked_scores(users), s)  # uncalibrated: the model's own scores
    model.cold_affine.copy_(torch.tensor([2.0, 0.5, 0.0]))
    out = model.ranked_scores(users)
    assert torch.equal(out[:, ~cold], s[:, ~cold])
    z = zscore(model.cold_scorer.scores(users)[:, cold])
    mean, std = s[:, ~cold].mean(1, keepdim=True), s[:, ~cold].std(1, keepdim=True)
    assert torch.allclose(out[:, cold], mean + std * (2.0 * z + 0.5), atol=1e-5)
    # the slope moves a user's cold items by its standardised log activity: up for the heavier users
    degree = torch.bincount(graph().users, minlength=N_USERS).float().log1p()
    activity = (degree - degree.mean()) / degree.std(correction=0)
    assert torch.allclose(model.activity, activity) and activity.std() > 0
    model.cold_affine.copy_(torch.tensor([2.0, 0.5, 1.0]))
    sloped = model.ranked_scores(users)
    assert torch.equal(sloped[:, ~cold], s[:, ~cold])
    assert torch.allclose(sloped[:, cold], mean + std * (2.0 * z + 0.5 + activity.unsqueeze(1)), atol=1e-5)
    model.cold_affine.copy_(torch.tensor([1.0, float("-inf"), 0.0]))  # "never ranked"
    assert (model.ranked_scores(users)[:, cold] == float("-inf")).all()


@pytest.mark.parametrize("name", CONTENT_MODELS)
def test_the_content_profile_blends_into_the_warm_scores_on_each_users_scale(name):
    model, users, s, cold = scored(name)
    c = model.cold_scorer.scores(users)[:, ~cold]
    z, std = zscore(c), s[:, ~cold].std(1, keepdim=True)
    model.profile_weight.fill_(0.5)
    out = model.ranked_scores(users)
    assert torch.allclose(out[:, ~cold], s[:, ~cold] + 0.5 * std * z, atol=1e-5)
    assert torch.equal(out[:, cold], s[:, cold])  # cold columns: the placement's (uncalibrated: the model's own)
    # placed cold items stand on the blended warm scores' scale
    model.cold_affine.copy_(torch.tensor([1.0, 0.0, 0.0]))
    placed, warm = model.ranked_scores(users), out[:, ~cold]
    zc = zscore(model.cold_scorer.scores(users)[:, cold])
    assert torch.allclose(placed[:, cold], warm.mean(1, keepdim=True) + warm.std(1, keepdim=True) * zc, atol=1e-5)
    # the blend moves a user's warm ranking towards its content profile's, and weight 0 is the model alone
    model.profile_weight.fill_(1e6)
    assert torch.equal(model.ranked_scores(users)[:, ~cold].argsort(1), c.argsort(1))
    model.profile_weight.zero_()
    model.cold_affine.zero_()
    assert torch.equal(model.ranked_scores(users), s)


@pytest.mark.parametrize("cold", [[], [0, 7, 39]])
@pytest.mark.parametrize("correction", [0, 1])
def test_warm_stats_are_the_mean_and_std_of_the_warm_columns(cold, correction):
    x = torch.randn(5, 40, generator=torch.Generator().manual_seed(0)) * 3 + 10  # an offset, as scores have
    warm = torch.ones(40, dtype=torch.bool)
    warm[cold] = False
    mean, std = warm_stats(x, torch.tensor(cold, dtype=torch.long), correction)
    assert mean.shape == std.shape == (5, 1)
    assert torch.allclose(mean, x[:, warm].mean(1, keepdim=True), atol=1e-5)
    assert torch.allclose(std, x[:, warm].std(1, correction=correction, keepdim=True), atol=1e-4)


def test_content_profile_scores_users_by_the_mean_of_their_items_and_leaves_the_positive_out():
    torch.manual_seed(0)
    g, feats = graph(), content()
    scorer = ContentProfile(feats, g, SIZES)
    v = scorer.map(stacked_content(feats))
    deg = torch.bincount(g.users, minlength=N_USERS).float().unsqueeze(1)
    profile = torch.zeros(N_USERS, v.shape[1]).index_add_(0, g.users, v[g.items]) / deg
    assert torch.allclose(scorer.scores(torch.arange(N_USERS)), profile @ v.T, atol=1e-5)
    users, pos, neg = g.users[:5], g.items[:5], torch.tensor([[13], [12], [11], [10], [9]])
    loo = (profile[users] * deg[users] - v[pos]) / (deg[users] - 1)  # the positive is not in its own profile
    want = bpr((loo * v[pos]).sum(-1), torch.einsum("bd,bnd->bn", loo, v[neg]))
    assert torch.allclose(scorer.loss(users, pos, neg).rank, want, atol=1e-6)


@pytest.mark.parametrize("name", CONTENT_MODELS)
def test_a_masked_modality_vector_is_ignored(name):
    feats = content()
    junk = feats["audio"][0].clone()
    junk[2] = torch.tensor([9.0, -9.0, 9.0])  # item 2 has no audio: whatever the vector holds is ignored
    feats["audio"] = (junk, feats["audio"][1])
    a, b = make(name).eval(), make(name, feats=feats).eval()
    for m in (a, b):
        m.cold_affine.copy_(torch.tensor([1.0, 0.0, 0.0]))  # the cold items' content scores count too
        m.refresh()
    assert torch.allclose(a.ranked_scores(torch.arange(N_USERS)), b.ranked_scores(torch.arange(N_USERS)), atol=1e-6)


@pytest.mark.parametrize("name", CONTENT_MODELS)
def test_content_models_need_content(name):
    torch.manual_seed(0)
    with pytest.raises(ValueError, match=f"{name!r} needs item content"):
        build(name, SIZES, graph(), None)


@pytest.mark.parametrize("name", ["metammf", "metammf_cp"])
def test_meta_fusion_needs_an_mlp_size(name):
    with pytest.raises(ValueError, match=f"{name!r} needs at least one mlp size, got \\[\\]"):
        build(name, dataclasses.replace(SIZES, mlp=()), graph(), content())


def test_lightgcn_propagation_equals_the_dense_reference():
    """D^-1/2 A D^-1/2 over the bipartite graph, K layers, mean of layers 0..K."""
    model = make("lightgcn")
    gr, n = graph(), N_USERS + N_ITEMS
    a = torch.zeros(n, n, dtype=torch.float64)
    a[gr.users, N_USERS + gr.items] = 1.0
    a[N_USERS + gr.items, gr.users] = 1.0
    d = a.sum(1)
    inv = torch.where(d > 0, d.pow(-0.5), torch.zeros_like(d))
    norm = inv[:, None] * a * inv[None, :]
    x = torch.cat([model.user.weight, model.item.weight]).double()
    layers = [x]
    for _ in range(SIZES.layers):
        layers.append(norm @ layers[-1])
    ref = torch.stack(layers).mean(0)
    users, items = model.embeddings()
    assert torch.allclose(torch.cat([users, items]).double(), ref, atol=1e-6)
    assert torch.allclose(
        sparse_adjacency(bipartite_edges(gr.users, gr.items, N_USERS), n, "sym").to_dense().double(), norm, atol=1e-7
    )


def test_propagation_gradients_equal_the_dense_autograd_ones():
    """The hand-written backwards (self-adjoint LightGCN, precomputed transpose) against dense autograd."""
    gr, n = graph(), N_USERS + N_ITEMS
    edges = bipartite_edges(gr.users, gr.items, N_USERS)
    x = torch.randn(n, 5, dtype=torch.float64, requires_grad=True)
    w = torch.randn(n, 5, dtype=torch.float64)  # a generic upstream gradient
    for norm in ("sym", "mean"):
        adj = sparse_adjacency(edges, n, norm).to(torch.float64)
        dense = adj.to_dense()
        if norm == "sym":
            out = LightPropagation(2)(x, adj)
            ref = (x + dense @ x + dense @ (dense @ x)) / 3
        else:
            out, ref = SparseMatmul.apply(adj, transpose_csr(adj), x), dense @ x
        (got,) = torch.autograd.grad((out * w).sum(), x)
        (want,) = torch.autograd.grad((ref * w).sum(), x)
        assert torch.allclose(out, ref) and torch.allclose(got, want), norm
        # a batch's rows alone (sorted, distinct, one of them isolated: item 15 is cold)
        rows = torch.tensor([0, 3, N_USERS + 2, n - 1])
        out, ref = RowsMatmul.apply(csr_rows(adj, rows), transpose_csr(adj), rows, x), (dense @ x)[rows]
        (got,) = torch.autograd.grad((out * w[rows]).sum(), x)
        (want,) = torch.autograd.grad((ref * w[rows]).sum(), x)
        assert torch.allclose(out, ref) and torch.allclose(got, want) and not out[-1].any(), norm
    block = csr_block(sparse_adjacency(edges, n, "mean"), N_USERS).to_dense()  # users' rows, items' columns
    assert block.shape == (N_USERS, N_ITEMS) and torch.allclose(block.sum(1), torch.ones(N_USERS))


@pytest.mark.parametrize("name", ["lgmrec", "metammf", "metammf_cp", "mmgcn"])
def test_a_batch_loss_reads_the_rows_of_the_full_embeddings(name):
    """Training computes the content branch for a batch's nodes only: the loss and its gradients equal the
    ones from every node's representation (the same random draws: MetaMMF's dropout; LGMRec draws its users'
    Gumbel noise for the batch's users alone, so it is compared without noise, in eval mode)."""
    model = make(name).train(name != "lgmrec")
    users, pos, neg = batch(model)
    with torch.no_grad():  # a content branch that is not zero yet (``out`` starts at zero)
        model.out.weight.normal_()
    torch.manual_seed(5)
    loss = ContentOnLightGcn.loss(model, users, pos, neg)  # without LGMRec's contrastive term
    got = torch.autograd.grad(total(loss), list(model.parameters()), allow_unused=True)
    torch.manual_seed(5)
    u_all, i_all = model.embeddings()
    u, p, n = u_all[users], i_all[pos], i_all[neg]
    rank = bpr((u * p).sum(-1), torch.einsum("bd,bnd->bn", u, n))
    ids = model.ids()
    branch = torch.cat([u_all, i_all]) - ids  # the content part of every node
    items = torch.cat([pos, neg.flatten()])
    ego = [model.user(users), model.item(items) * model.seen[items], branch[torch.cat([users, N_USERS + items])]]
    l2 = sum(t.pow(2).sum() for t in ego) / (2 * users.shape[0])
    assert torch.allclose(loss.rank, rank) and torch.allclose(loss.l2, l2)
    if name == "lgmrec":  # its contrastive term reads the batch's rows of every user's and item's hyper embeddings
        (u_a, i_a), (u_b, i_b) = model._hyper  # set by embeddings() above
        u, i = users.unique()[:CL_ROWS], pos.unique()[:CL_ROWS]
        cl = info_nce(u_a[u], u_b[u]) + info_nce(i_a[i], i_b[i])
        assert torch.allclose(model.loss(users, pos, neg).rank, rank + CL_WEIGHT * cl)
    want = torch.autograd.grad(rank + 1e-3 * l2, list(model.parameters()), allow_unused=True)
    for a, b in zip(got, want):
        assert (a is None) == (b is None) and (a is None or torch.allclose(a, b, atol=1e-6))


def test_mean_adjacency_averages_the_neighbours():
    edges = bipartite_edges(torch.tensor([0, 0, 1]), torch.tensor([0, 1, 1]), n_users=2)  # nodes: u0 u1 i0 i1
    x = torch.tensor([[1.0], [2.0], [10.0], [20.0]])
    out = torch.sparse.mm(sparse_adjacency(edges, 4, "mean"), x)
    assert out.squeeze(1).tolist() == [15.0, 20.0, 1.0, 1.5]


@pytest.mark.parametrize("name", ["metammf", "metammf_cp"])
def test_metammf_fuses_each_item_with_its_own_parameters(name):
    model = make(name).eval()
    with torch.no_grad():
        signal = model.signal(torch.tensor([0, 9]))  # items of different groups: different features
        w = model.fusion[0].weights(signal)  # (2, d_in, d_out)
        f = torch.nn.functional.leaky_relu(model.reduce(model.features[[0, 9]]))  # the meta layers' input
        assert not torch.allclose(w[0], w[1])  # item-specific fusion parameters
        # the layer applies exactly each item's own matrix
        assert torch.allclose(model.fusion[0](signal, f), torch.einsum("ni,nio->no", f, w), atol=1e-5)


def test_cp_meta_layer_is_a_rank_r_meta_layer():
    torch.manual_seed(0)
    cp, full = CPMetaLinear(rank=2, signal_dim=3, d_in=5, d_out=4), MetaLinear(3, 5, 4)
    with torch.no_grad():  # the full layer holding T = sum_r c_r o a_r o b_r computes the same map
        full.m.copy_(cp.m)
        full.t.copy_(torch.einsum("rs,ir,ro->sio", cp.c, cp.a, cp.b).reshape(3, 20))
    s, x = torch.randn(7, 3), torch.randn(7, 5)
    assert torch.allclose(cp(s, x), full(s, x), atol=1e-5)
    assert sum(p.numel() for p in cp.parameters()) < sum(p.numel() for p in full.parameters())


def test_neumf_trains_on_four_negatives_with_binary_cross_entropy():
    model = make("neumf")
    assert model.negatives == 4
    with torch.no_grad():
        model.predict.weight.zero_()  # every logit 0: the BCE of each of the 5 pairs is log 2
    assert model.loss(*batch(model)).rank.item() == pytest.approx(torch.log(torch.tensor(2.0)).item(), abs=1e-6)


def test_neumf_scores_equal_its_pairwise_logits():
    model = make("neumf").eval()
    users = torch.tensor([1, 4, 7])
    with torch.no_grad():
        pairwise = model.logits(users, torch.arange(N_ITEMS).expand(3, -1))
        assert torch.allclose(model.scores(users), pairwise, atol=1e-5)


def test_knn_graph_links_each_item_to_its_most_similar_present_items():
    x = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9], [1.0, 0.05]])
    present = torch.tensor([True, True, True, True, False])
    adj = knn_adjacency(x, present, k=2).to_dense()
    assert adj[0].nonzero().squeeze(1).tolist() == [0, 1]  # itself and its neighbour; absent item 4 excluded
    assert adj[2].nonzero().squeeze(1).tolist() == [2, 3]
    assert adj[4].sum() == 0 and adj[:, 4].sum() == 0
    assert torch.allclose(adj[:4].sum(1), torch.ones(4))
    rows = torch.tensor([False, False, False, False, True])  # item 4 alone gets neighbours, among items 0-3
    only = knn_adjacency(x, present, k=1, rows=rows).to_dense()
    assert only.nonzero().tolist() == [[4, 0]] and only[4, 0] == 1.0


def test_freedom_prunes_the_user_item_graph_once_per_epoch():
    sizes = RecSizes(**{**SIZES.__dict__, "dropout": 0.5})
    model = make("freedom", sizes=sizes).train()
    n_edges = graph().users.shape[0]
    users, pos, neg = batch(model)
    model.loss(users, pos, neg)
    first = model.pruned
    assert first._nnz() == 2 * int(n_edges * 0.5)  # both directions of the kept half
    assert model.adj._nnz() == 2 * n_edges  # scoring keeps the full graph
    while model.positives_seen + users.shape[0] < n_edges:  # the rest of the epoch: same pruned graph
        model.loss(users, pos, neg)
        assert model.pruned is first
    model.loss(users, pos, neg)
    model.loss(users, pos, neg)
    assert model.pruned is not first

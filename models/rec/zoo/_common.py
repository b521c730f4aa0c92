"""What the top-K models share beyond the layers: content checks, the seen-item mask, and ``Propagated``,
the base of the models that compute every user's and item's representation at once (graph models).
"""

from __future__ import annotations

import torch
from torch import nn

from models.layers import LightPropagation, bipartite_edges, sparse_adjacency, unit_rows
from models.rec.base import Content, Graph, Loss, RecModel, RecSizes, bpr, l2


def require_content(name: str, content: Content | None) -> Content:
    """``content`` if it has at least one modality, else the one-line error a user can act on."""
    if not content:
        raise ValueError(f"top-K model {name!r} needs item content: give it at least one modality")
    return content


def stacked_content(content: Content) -> torch.Tensor:
    """The modalities side by side, ``(n_items, sum D_m)``, sorted by name; a missing modality is zeros."""
    return torch.cat([x.float() * m.unsqueeze(1) for _, (x, m) in sorted(content.items())], dim=1)


def user_means(x: torch.Tensor, graph: Graph, n_users: int) -> torch.Tensor:
    """``(n_users, D)``: each user's mean of its training items' rows of ``x`` (zeros for a user without any).

    A linear map of a user's items averaged equals the map of their averaged features, so content models
    compute this once and map it per step instead of averaging mapped vectors over the graph.
    """
    degree = torch.bincount(graph.users.long(), minlength=n_users).clamp(min=1).float().unsqueeze(1)
    return torch.zeros(n_users, x.shape[1]).index_add_(0, graph.users.long(), x[graph.items.long()]) / degree


def seen_items(graph: Graph, n_items: int) -> torch.Tensor:
    """``(n_items, 1)`` float: 1 for items with a training edge, 0 for cold ones.

    Content models multiply their item ID rows by it: a cold item's ID row would only ever be pushed down
    as a sampled negative ("never clicked"), so it is held at zero and the item is scored from its content.
    """
    return (torch.bincount(graph.items, minlength=n_items) > 0).float().unsqueeze(1)


class ContentProfile(nn.Module):
    """Scores items from content alone: what every content model ranks its cold items with, and blends into
    its warm items' scores (``RecModel.blend_profile``, ``rec.profile_weight``).

    An item is its content vector c_i = W x_i (``x_i`` the modalities side by side, W a bias-free linear
    map to ``dim``); a user is its profile, the mean of its training items' vectors, = W xbar_u (the map is
    linear, so the mean of the raw features is computed once); score = profile · c_i. Trained with its own
    BPR on the training positives, the profile leaving the positive out (a user's profile always contains
    its positives: with it in, the map would learn self-similarity); users with one training item have no
    such profile and are skipped.

    Why a separate scorer (issue 23): the models' own content paths are trained as a complement to ID
    embeddings, so for an item without an ID they rank little better than chance on weakly aligned content
    (so did imputing a cold item from its content neighbours, and a ridge map from content to LightGCN's
    item embeddings: within-cold Recall@20 0.03 against 0.06 at random on the realistic profile), while a
    user's content profile ranks cold items well (the plain profile cosine: 0.11-0.18, this scorer 0.15).
    The loop then places these scores among the warm items' on validation (``calibrate_cold``). For warm
    items the same holds in a milder form: the profile is trained apart from the ID embeddings (which fit
    the training positives first), so its scores are a second opinion the blend can add.
    """

    def __init__(self, content: Content, graph: Graph, sizes: RecSizes):
        super().__init__()
        n_users, dim = sizes.n_users, max(1, sizes.embed_dim // 2)  # half width: it only ranks cold items
        x = stacked_content(content)
        self.register_buffer("x", x)
        self.register_buffer("mean", user_means(x, graph, n_users), persistent=False)
        degree = torch.bincount(graph.users.long(), minlength=n_users).float()
        self.register_buffer("degree", degree, persistent=False)
        self.map = nn.Linear(x.shape[1], dim, bias=False)
        self._cache: tuple[torch.Tensor, torch.Tensor] | None = None
        self.register_load_state_dict_post_hook(lambda module, keys: setattr(module, "_cache", None))

    def loss(self, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor) -> Loss:
        self._cache = None
        keep = self.degree[users] > 1
        if not bool(keep.any()):
            zero = self.map.weight.sum() * 0.0
            return Loss(zero, zero)
        users, pos, neg = users[keep], pos[keep], neg[keep]
        deg = self.degree[users].unsqueeze(1)
        profile = self.map((self.mean[users] * deg - self.x[pos]) / (deg - 1))
        p, n = self.map(self.x[pos]), self.map(self.x[neg])
        return Loss(bpr((profile * p).sum(-1), torch.einsum("bd,bnd->bn", profile, n)), l2(profile, p, n.flatten(0, 1)))

    def train(self, mode: bool = True):
        self._cache = None
        return super().train(mode)

    def refresh(self) -> None:
        with torch.no_grad():
            self._cache = (self.map(self.mean), self.map(self.x))

    def scores(self, users: torch.Tensor) -> torch.Tensor:
        if self._cache is None:
            self.refresh()
        profiles, vectors = self._cache
        return profiles[users] @ vectors.T


class Propagated(RecModel):
    """Scores are user · item of representations computed for all nodes at once by ``embeddings()``.

    ``refresh()`` computes them once without grad and ``scores`` reads that cache; training (``loss``,
    ``train()``) and loading a state dict drop it, so a stale cache is never scored.
    """

    def __init__(self, sizes: RecSizes, graph: Graph, content: Content | None):
        super().__init__(sizes, graph, content)
        self._cache: tuple[torch.Tensor, torch.Tensor] | None = None
        self.register_load_state_dict_post_hook(lambda module, keys: module.drop_cache())

    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(n_users, D)``, ``(n_items, D)`` from the current parameters."""
        raise NotImplementedError

    def training_embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        """What the loss ranks with (``embeddings()`` unless a model trains on another graph than it scores)."""
        return self.embeddings()

    def ranking(self, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """BPR of the batch on fresh representations; also returns them (users (B, D), all items (I, D))."""
        self._cache = None
        u_all, i_all = self.training_embeddings()
        u = u_all[users]
        rank = bpr((u * i_all[pos]).sum(-1), torch.einsum("bd,bnd->bn", u, i_all[neg]))
        return rank, u, i_all

    def drop_cache(self) -> None:
        self._cache = None

    def train(self, mode: bool = True):
        self._cache = None
        return super().train(mode)

    def refresh(self) -> None:
        with torch.no_grad():
            users, items = self.embeddings()
            self._cache = (users.detach(), items.detach())
        if self.cold_scorer is not None:
            self.cold_scorer.refresh()

    def scores(self, users: torch.Tensor) -> torch.Tensor:
        if self._cache is None:
            self.refresh()
        u_all, i_all = self._cache
        return u_all[users] @ i_all.T

    def loss(self, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor) -> Loss:
        raise NotImplementedError


CONTENT_LR = 0.1  # learning rate of content parameters, as a multiple of rec.lr (RecModel.lr_groups)


class LightGcnBackbone(Propagated):
    """LightGCN's parameters and graph: ID embeddings N(0, 0.1) (the authors' init), the symmetric-normalised
    user-item adjacency and ``sizes.layers`` propagations (``lightgcn``, and the content models built on it)."""

    lr = 5e-3

    def __init__(self, sizes: RecSizes, graph: Graph, content: Content | None):
        super().__init__(sizes, graph, content)
        self.user = nn.Embedding(sizes.n_users, sizes.embed_dim)
        self.item = nn.Embedding(sizes.n_items, sizes.embed_dim)
        nn.init.normal_(self.user.weight, std=0.1)
        nn.init.normal_(self.item.weight, std=0.1)
        edges = bipartite_edges(graph.users, graph.items, sizes.n_users)
        # derived from the graph the model is built with: moves with .to(), not saved in the state dict
        self.register_buffer("adj", sparse_adjacency(edges, sizes.n_users + sizes.n_items, "sym"), persistent=False)
        self.propagate = LightPropagation(sizes.layers)


class ContentOnLightGcn(LightGcnBackbone):
    """A graph content model as a residual on LightGCN: representation = LightGCN's (ID embeddings N(0, 0.1),
    ``sizes.layers`` layers on the symmetric graph, mean of layers) + the model's content branch
    (``branch()``), whose last layer (``self.out``) starts at zero.

    Why (issue 23): on sparse data whose content is weakly aligned with who clicks what, MMGCN's and
    MetaMMF's own ID paths (nonlinear layers, GraphSAGE) trained worse than LightGCN's, and their content
    entered at full weight from the first step, so they lost to LightGCN and even to popularity. Built this
    way a content model starts as LightGCN exactly (the backbone is created first, so the same seed gives
    the same ID init) and the content earns whatever weight the training positives give it, learning at
    ``CONTENT_LR`` x the rate (with Adam a zero init alone does not slow a parameter down); a cold item
    (no edges, zero ID row) is represented by its branch alone, and the loop calibrates its offset.
    Trained as LightGCN: BPR, L2 on the batch's ego embeddings and on its branch outputs.
    """

    name = ""  # the registered name, for messages
    staged = True  # content off: LightGCN (the branch is not computed)

    def __init__(self, sizes: RecSizes, graph: Graph, content: Content | None):
        super().__init__(sizes, graph, content)
        self.register_buffer("seen", seen_items(graph, sizes.n_items))
        self.branch_dim = max(1, sizes.embed_dim // 2)  # the branch's width: half, for speed (issue 23)
        self.out = nn.Linear(self.branch_dim, sizes.embed_dim, bias=False)
        nn.init.zeros_(self.out.weight)
        self.cold_scorer = ContentProfile(require_content(self.name, content), graph, sizes)

    def lr_groups(self):
        ids = [self.user.weight, self.item.weight]
        rest = [p for p in self.parameters() if p.requires_grad and all(p is not q for q in ids)]
        return [(ids, 1.0), (rest, CONTENT_LR)]

    def branch(self, ids: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
        """The content branch before ``out`` for the nodes ``rows`` (sorted, distinct codes of users then
        items; every node when None): ``(len(rows), branch_dim)``. ``ids``: every node's ``ids()``.

        Training asks for a batch's rows only (issue 23's speed target): a model computes what those rows
        read (their neighbours' inputs) and not the rest of its last layers."""
        raise NotImplementedError

    def ids(self) -> torch.Tensor:
        """LightGCN's representations of every user then item: ``(n_users + n_items, embed_dim)``."""
        return self.propagate(torch.cat([self.user.weight, self.item.weight * self.seen]), self.adj)

    def content(self, ids: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
        """What the branch adds to ``ids`` at ``rows`` (all when None): ``(len(rows), embed_dim)``."""
        # unit rows: the branch's own scale (raw features through random layers) would set out's step size
        return self.out(unit_rows(self.branch(ids, rows)))

    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        ids = self.ids()
        if self.content_on:
            ids = ids + self.content(ids)
        return ids.split([self.sizes.n_users, self.sizes.n_items])

    def loss(self, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor) -> Loss:
        # the batch's rows of embeddings(): the ID part is propagated for every node (LightGCN's cost), the
        # content part computed for the batch's distinct nodes alone
        self._cache = None
        n_u, batch = self.sizes.n_users, users.shape[0]
        items = torch.cat([pos, neg.flatten()])
        nodes = torch.cat([users, n_u + items])
        ids = self.ids()
        rep, extra = ids[nodes], []
        if self.content_on:
            rows, where = nodes.unique(return_inverse=True)
            extra = [self.content(ids, rows)[where]]
            rep = rep + extra[0]
        u, p, n = rep.split([batch, batch, items.shape[0] - batch])
        rank = bpr((u * p).sum(-1), torch.einsum("bd,bnd->bn", u, n.view(batch, -1, u.shape[1])))
        return Loss(rank, l2(self.user(users), self.item(items) * self.seen[items], *extra))

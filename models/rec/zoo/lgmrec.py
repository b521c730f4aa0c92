"""``lgmrec``: LGMRec (Guo et al., "LGMRec: Local and Global Graph Learning for Multimodal Recommendation",
AAAI 2024; the authors' code georgeguo-cn/LGMRec, as MMRec ports it), the newer model after FREEDOM.

Three embeddings, summed: the collaborative one (LightGCN on ID embeddings, the ``ContentOnLightGcn``
backbone), the *local* modality one (each modality's features through a bias-free linear map; a user is
the mean of its training items'; propagated on the same graph, L2-normalised, summed over modalities) and
the *global* hypergraph one: each modality's features give every item soft memberships of
``HYPEREDGES`` learnt hyperedges (Gumbel-softmax, temperature ``TAU``, dropout 1 - ``KEEP``; a user's are
the sum of its items'), and the hyperedges carry the items' collaborative embeddings back to items and
users. Representation = collaborative + out(local + ``ALPHA`` * normalise(global)). Loss: BPR, the
InfoNCE between the modalities' hypergraph embeddings (weight ``CL_WEIGHT``, temperature ``TAU``), L2.

Deliberate differences: the local embedding is the mean of layers 0..K, not the last layer, so a cold item
(no edges) keeps its own projected content; the local + global part enters through the zero-initialised
map of ``ContentOnLightGcn``; scoring uses the plain softmax (the reference draws Gumbel noise at test time
too); the hyperedges read the collaborative embeddings without gradient; the contrastive loss contrasts up to ``CL_ROWS`` distinct users (items) of the batch with each other,
not with every user (item): against all of them it made an epoch 18x LightGCN's; one modality gets no
contrastive term. A cold item's global embedding comes from its content's
hyperedges: that is what ranks it.

Speed (same values): the local embedding is a linear map of the features, so the features are propagated
once at build time and each step multiplies the batch's rows by W; in training the users' memberships and
every hyper embedding are computed for the batch's nodes alone (the items' memberships for all: the
hyperedges read every item). Memory: one (users + items) x D_m copy of each modality's features.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.functional import dropout, gumbel_softmax, linear, normalize, softmax

from models.layers import RowsMatmul, SparseMatmul, csr_rows, to_csr, transpose_csr, unit_rows
from models.rec import MODELS
from models.rec.base import Content, Graph, Loss, RecSizes
from models.rec.zoo._common import ContentOnLightGcn, require_content, user_means

HYPEREDGES = 4  # hyper_num (MMRec's Baby / Sports default)
TAU = 0.2  # Gumbel-softmax and InfoNCE temperature (the reference's hard-coded tau)
KEEP = 0.5  # keep_rate of the hyperedge memberships
ALPHA = 0.3  # weight of the global embedding
CL_WEIGHT = 1e-4  # weight of the hypergraph contrastive loss


CL_ROWS = 512  # distinct users (items) of a batch in the contrastive loss, each other's negatives


def info_nce(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Summed InfoNCE of row n of ``a`` against row n of ``b``, the other rows of ``b`` the negatives."""
    a, b = normalize(a), normalize(b)
    return -((a * b).sum(1) / TAU - torch.logsumexp(a @ b.T / TAU, dim=1)).sum()


@MODELS.register("lgmrec")
class Lgmrec(ContentOnLightGcn):
    name = "lgmrec"

    def __init__(self, sizes: RecSizes, graph: Graph, content: Content | None):
        super().__init__(sizes, graph, content)
        content = require_content(self.name, content)
        self.names = sorted(content)
        d = self.branch_dim
        for k, name in enumerate(self.names):
            x, present = content[name]
            x = x.float() * present.float().unsqueeze(1)
            self.register_buffer(f"x{k}", x)
            # the local embedding, propagate([users' mean of their items' x; x] W), is a linear map of W:
            # the propagated features are computed once, each step multiplies them by W
            with torch.no_grad():
                features = torch.cat([user_means(x, graph, sizes.n_users), x])
                self.register_buffer(f"p{k}", self.propagate(features, self.adj), persistent=False)
        self.local = nn.ParameterList(
            nn.init.xavier_uniform_(torch.empty(content[n][0].shape[1], d)) for n in self.names
        )
        self.hyper = nn.ParameterList(
            nn.init.xavier_uniform_(torch.empty(content[n][0].shape[1], HYPEREDGES)) for n in self.names
        )
        index = torch.stack([graph.users.long(), graph.items.long()])
        ones = torch.ones(index.shape[1])
        inter = to_csr(torch.sparse_coo_tensor(index, ones, (sizes.n_users, sizes.n_items), check_invariants=True))
        self.register_buffer("inter", inter, persistent=False)  # R: (U, I), a user's row sums its items
        self.register_buffer("inter_t", transpose_csr(inter), persistent=False)
        # the collaborative embeddings, to the branch's width (the reference's branch is as wide as they are)
        self.down = nn.Parameter(nn.init.xavier_uniform_(torch.empty(sizes.embed_dim, d)))
        self._hyper: list[tuple[torch.Tensor, torch.Tensor]] = []
        self._hyper_rows: tuple[torch.Tensor | None, torch.Tensor | None] = (None, None)

    def memberships(self, logits: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return softmax(logits / TAU, dim=1)
        return dropout(gumbel_softmax(logits, TAU, dim=1), 1.0 - KEEP, True)

    def branch(self, ids: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
        n_u = self.sizes.n_users
        if rows is None:
            self._hyper_rows = (None, None)
        else:  # rows are sorted: users, then items
            split = int(torch.searchsorted(rows, n_u))
            self._hyper_rows = (rows[:split], rows[split:] - n_u)
        user_rows, item_rows = self._hyper_rows
        inter_rows = None if user_rows is None else csr_rows(self.inter, user_rows)  # shared by the modalities
        self._hyper = []
        local, glob = 0.0, 0.0
        for k, (w, v) in enumerate(zip(self.local, self.hyper)):
            x = getattr(self, f"x{k}")
            propagated = getattr(self, f"p{k}")  # propagate(features) W = propagate(features W): linear
            local = local + unit_rows((propagated if rows is None else propagated[rows]) @ w)
            # (I, A): every item's, the hyperedges read them all. As linear(x, v^T): with A = 4 columns,
            # ``x @ v`` and its weight gradient take a slow matmul path (6x slower forward and backward)
            item_logits = linear(x, v.T.contiguous())
            if user_rows is None:  # (U, A): the sum of its items'
                user_logits = SparseMatmul.apply(self.inter, self.inter_t, item_logits)
            else:
                user_logits = RowsMatmul.apply(inter_rows, self.inter_t, user_rows, item_logits)
            h_items, h_users = self.memberships(item_logits), self.memberships(user_logits)
            # (A, D/2): the hyperedges carry the items' collaborative embeddings, without gradient back into
            # them: the branch (and its contrastive loss) would otherwise move LightGCN's embeddings
            edges = h_items.T @ ids[n_u:].detach() @ self.down
            hyper = (h_users @ edges, (h_items if item_rows is None else h_items[item_rows]) @ edges)
            self._hyper.append(hyper)
            glob = glob + torch.cat(hyper)
        return local + ALPHA * unit_rows(glob)

    def loss(self, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor) -> Loss:
        self._hyper = []  # set by branch(), which the ID-only base does not call
        out = super().loss(users, pos, neg)
        if len(self._hyper) < 2:
            return out
        (u_a, i_a), (u_b, i_b) = self._hyper[:2]
        u, i = users.unique()[:CL_ROWS], pos.unique()[:CL_ROWS]
        user_rows, item_rows = self._hyper_rows  # the hyperedge embeddings are the batch's rows
        u, i = torch.searchsorted(user_rows, u), torch.searchsorted(item_rows, i)
        cl = info_nce(u_a[u], u_b[u]) + info_nce(i_a[i], i_b[i])
        return Loss(out.rank + CL_WEIGHT * cl, out.l2)

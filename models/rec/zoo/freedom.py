"""``freedom``: FREEDOM (Zhou & Shen 2023), the recent strong multimodal recommender of our choice (it beats
LATTICE, BM3's predecessors and MMGCN on MMRec's benchmarks at a fraction of LATTICE's cost).

Two graphs, as the reference code (MMRec ``freedom.py``): a *frozen* item-item kNN graph built once from the
raw content (per modality, cosine, k = ``sizes.knn``, averaged over modalities) that propagates the item ID
embeddings (1 layer), and the user-item graph through LightGCN (``sizes.layers``), *denoised* by
degree-sensitive edge pruning: once per epoch (every ``n_edges`` training positives seen) a fraction
``sizes.dropout`` of the edges is dropped, sampled with probability ~ 1/sqrt(d_u d_i), and the kept graph is
re-normalised; scoring uses the full graph. Item = LightGCN item + w * kNN item.

Loss, as the paper: BPR on those, and, in ``Loss.l2`` (so the loop's ``rec.reg`` is the paper's lambda),
the BPR of the user embeddings against each modality's projected features. The raw features stay frozen
(the reference fine-tunes them). Deliberate differences (issue 23): LightGCN's N(0, 0.1) init (the
reference: Xavier-uniform) and the learnt weight w of the kNN part, 0 at first (the reference adds it at
full weight): with weakly aligned content the kNN neighbours are mostly noise, and FREEDOM lost to
LightGCN on the realistic profile. A cold item's ID row is zero; it is ranked by the content profile scorer
(``ContentProfile``) that the loop calibrates on validation.
"""

from __future__ import annotations

import torch
from torch import nn

from models.layers import (
    LightPropagation,
    ModalityProjection,
    SparseMatmul,
    bipartite_edges,
    content_knn_graph,
    sparse_adjacency,
    transpose_csr,
)
from models.rec import MODELS
from models.rec.base import Content, Graph, Loss, RecSizes, bpr
from models.rec.zoo._common import ContentProfile, Propagated, require_content, seen_items

ITEM_LAYERS = 1  # propagation steps on the item-item graph (the reference's n_mm_layers)


@MODELS.register("freedom")
class Freedom(Propagated):
    lr = 5e-3
    staged = True  # content off: (pruned) LightGCN, no kNN part, no feature loss
    dropout = 0.0  # share of the user-item edges pruned each epoch (the reference: 0.8; docs/stages/rec.md)

    def __init__(self, sizes: RecSizes, graph: Graph, content: Content | None):
        super().__init__(sizes, graph, content)
        content = require_content("freedom", content)
        self.user = nn.Embedding(sizes.n_users, sizes.embed_dim)
        self.item = nn.Embedding(sizes.n_items, sizes.embed_dim)
        nn.init.normal_(self.user.weight, std=0.1)
        nn.init.normal_(self.item.weight, std=0.1)
        # the weight of the kNN item-item part; 0 at first: the model starts as (pruned) LightGCN
        self.knn_weight = nn.Parameter(torch.zeros(()))
        self.features = ModalityProjection(content, sizes.embed_dim)  # the auxiliary loss's projections
        self.register_buffer("seen", seen_items(graph, sizes.n_items))
        self.register_buffer("item_adj", content_knn_graph(content, sizes.knn), persistent=False)
        self.register_buffer("item_adj_t", transpose_csr(self.item_adj), persistent=False)
        self.register_buffer("edge_users", graph.users.long(), persistent=False)
        self.register_buffer("edge_items", graph.items.long(), persistent=False)
        full = bipartite_edges(self.edge_users, self.edge_items, sizes.n_users)
        self.register_buffer("adj", sparse_adjacency(full, sizes.n_users + sizes.n_items, "sym"), persistent=False)
        deg_u = torch.bincount(self.edge_users, minlength=sizes.n_users).float()
        deg_i = torch.bincount(self.edge_items, minlength=sizes.n_items).float()
        # degree-sensitive: an edge between popular nodes is the likelier noise, so the likelier dropped
        self.register_buffer("keep_prob", (deg_u[self.edge_users] * deg_i[self.edge_items]).rsqrt(), persistent=False)
        self.pruned: torch.Tensor | None = None
        self.positives_seen = 0  # training positives since the last pruning: an epoch is n_edges of them
        self.propagate = LightPropagation(sizes.layers)
        self.cold_scorer = ContentProfile(content, graph, sizes)

    def prune(self) -> torch.Tensor:
        """A fresh denoised user-item adjacency: keeps (1 - dropout) of the edges, ~ 1/sqrt(d_u d_i)."""
        n_keep = max(1, int(self.keep_prob.shape[0] * (1.0 - self.sizes.dropout)))  # dropout 1.0: one edge left
        if n_keep >= self.keep_prob.shape[0]:
            return self.adj
        keep = torch.multinomial(self.keep_prob, n_keep)
        edges = bipartite_edges(self.edge_users[keep], self.edge_items[keep], self.sizes.n_users)
        return sparse_adjacency(edges, self.sizes.n_users + self.sizes.n_items, "sym")

    def embeddings(self, adj: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        items = self.item.weight * self.seen
        out = self.propagate(torch.cat([self.user.weight, items]), self.adj if adj is None else adj)
        users, warm = out.split([self.sizes.n_users, self.sizes.n_items])
        if not self.content_on:
            return users, warm
        for _ in range(ITEM_LAYERS):
            items = SparseMatmul.apply(self.item_adj, self.item_adj_t, items)
        return users, warm + self.knn_weight * items

    def training_embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        # FREEDOM prunes once per epoch (its pre_epoch_processing); the contract has no epoch hook, so an
        # epoch is counted in training positives
        stale = self.pruned is None or self.pruned.device != self.adj.device
        if stale or self.positives_seen >= self.keep_prob.shape[0]:
            self.pruned, self.positives_seen = self.prune(), 0
        return self.embeddings(self.pruned)

    def loss(self, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor) -> Loss:
        rank, u, _ = self.ranking(users, pos, neg)
        self.positives_seen += users.shape[0]
        if not self.content_on:
            return Loss(rank, rank.new_zeros(()))
        (fp, _), (fn, _) = self.features(pos), self.features(neg)  # (B, M, D), (B, N, M, D)
        aux = sum(bpr((u * fp[:, m]).sum(-1), torch.einsum("bd,bnd->bn", u, fn[:, :, m])) for m in range(fp.shape[1]))
        return Loss(rank, aux)

"""Shared PyTorch layers: the CTR models' (field embeddings, modality projection, FM, MLP, attention) and
the top-K models' (sparse user-item adjacencies, LightGCN propagation, content kNN graphs, meta layers).

Index 0 of every CTR embedding table is padding/unknown and stays a zero vector. PyTorch Geometric is
imported inside the graph layers only, so the CTR models never pay for it.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager

import torch
from torch import nn


class FieldEmbedding(nn.Module):
    """Every input field as one vector: ``(B, F, D)`` with F = 2 (user, item) + categorical + multi + numeric.

    A multi-valued field is the mean of its non-padding value embeddings; a numeric field scales
    its own learned vector by the (standardised) value.
    """

    def __init__(self, n_users: int, n_items: int, categorical: list[int], multi: list[int], n_numeric: int, dim: int):
        super().__init__()
        self.user = nn.Embedding(n_users, dim, padding_idx=0)
        self.item = nn.Embedding(n_items, dim, padding_idx=0)
        self.cats = nn.ModuleList(nn.Embedding(n, dim, padding_idx=0) for n in categorical)
        self.multis = nn.ModuleList(nn.Embedding(n, dim, padding_idx=0) for n in multi)
        self.numeric = nn.Parameter(torch.randn(n_numeric, dim) * 0.01)
        self.n_fields = 2 + len(categorical) + len(multi) + n_numeric
        for emb in [self.user, self.item, *self.cats, *self.multis]:
            nn.init.normal_(emb.weight, std=0.01)
            with torch.no_grad():
                emb.weight[0].zero_()

    def forward(self, batch: dict[str, torch.Tensor], item: torch.Tensor | None = None) -> torch.Tensor:
        """``item``: the target items' ID vectors when the caller already looked them up (one lookup, one grad).

        The item row is ``batch["item_id"]`` when present (the CTR base maps unseen items to a shared row).
        """
        if item is None:
            item = self.item(batch["item_id"] if "item_id" in batch else batch["item"])
        parts = [self.user(batch["user"]), item]  # each (B, D)
        parts += [emb(batch["cat"][:, k]) for k, emb in enumerate(self.cats)]
        for k, emb in enumerate(self.multis):
            codes = batch["multi"][:, k]  # (B, M)
            mask = (codes > 0).unsqueeze(-1).float()
            parts.append((emb(codes) * mask).sum(1) / mask.sum(1).clamp(min=1.0))
        fields = torch.stack(parts, dim=1)  # (B, F_id, D)
        if self.numeric.shape[0]:
            num = batch["num"].unsqueeze(-1) * self.numeric  # (B, N, D)
            fields = torch.cat([fields, num], dim=1)
        return fields  # (B, F, D)


class ModalityProjection(nn.Module):
    """A dense projection per modality of a content table held as buffers (rows = item codes).

    ``forward(item_codes)`` -> ``(..., M, D)`` projected vectors and ``(..., M)`` presence masks.
    """

    def __init__(self, content: dict[str, tuple[torch.Tensor, torch.Tensor]], dim: int):
        super().__init__()
        self.names = sorted(content)
        for k, name in enumerate(self.names):
            matrix, present = content[name]
            self.register_buffer(f"x{k}", matrix.float())  # (n_items, D_m)
            self.register_buffer(f"m{k}", present.bool())  # (n_items,)
        self.proj = nn.ModuleList(nn.Linear(content[n][0].shape[1], dim) for n in self.names)

    def forward(self, items: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # Project each distinct item once: histories repeat items, and the raw vectors are wide.
        uniq, inv = torch.unique(items, return_inverse=True)  # (U,), inv shaped like items
        vecs, masks = [], []
        for k, proj in enumerate(self.proj):
            mask = getattr(self, f"m{k}")[uniq]  # (U,)
            vecs.append((proj(getattr(self, f"x{k}")[uniq]) * mask.unsqueeze(-1))[inv])  # (..., D)
            masks.append(mask[inv])
        return torch.stack(vecs, dim=-2), torch.stack(masks, dim=-1)  # (..., M, D), (..., M)


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over dim -2 of ``(..., M, D)`` where ``mask (..., M)`` holds; zeros where none does."""
    m = mask.unsqueeze(-1).float()
    return (x * m).sum(-2) / m.sum(-2).clamp(min=1.0)


def fm_pairwise(fields: torch.Tensor) -> torch.Tensor:
    """sum_{i<j} <v_i, v_j> for ``(B, F, D)`` fields -> ``(B,)`` (Rendle's O(F D) identity)."""
    square_of_sum = fields.sum(1).pow(2)  # (B, D)
    sum_of_square = fields.pow(2).sum(1)  # (B, D)
    return 0.5 * (square_of_sum - sum_of_square).sum(1)


class MLP(nn.Module):
    def __init__(self, d_in: int, hidden: tuple[int, ...], dropout: float, out: int | None = 1):
        super().__init__()
        layers: list[nn.Module] = []
        for h in hidden:
            layers += [nn.Linear(d_in, h), nn.ReLU(), nn.Dropout(dropout)]
            d_in = h
        if out is not None:
            layers.append(nn.Linear(d_in, out))
        self.net = nn.Sequential(*layers)
        self.d_out = out if out is not None else d_in

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class TargetAttention(nn.Module):
    """DIN's local activation unit: scores of each behaviour w.r.t. the target from [q, k, q-k, q*k]."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.dim = dim
        self.first = nn.Linear(4 * dim, hidden)  # over [q, k, q - k, q * k]
        self.out = nn.Linear(hidden, 1)

    def weights(self, query: torch.Tensor, keys: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``(B, D)``, ``(B, T, D)``, ``(B, T)`` -> softmax weights ``(B, T)``, zero on padding."""
        # The first layer split by input block: [q, k, q-k, q*k] W = q (Wq + Wd) + k (Wk - Wd) + (q*k) Wp,
        # the same function without building the (B, T, 4D) concatenation; q's part is computed once per row.
        wq, wk, wd, wp = self.first.weight.split(self.dim, dim=1)  # each (hidden, D)
        hq = nn.functional.linear(query, wq + wd, self.first.bias)  # (B, hidden)
        hk = nn.functional.linear(keys, wk - wd) + nn.functional.linear(query.unsqueeze(1) * keys, wp)  # (B, T, hidden)
        s = self.out(torch.sigmoid(hq.unsqueeze(1) + hk)).squeeze(-1)  # (B, T)
        w = torch.softmax(s.masked_fill(~mask, -1e9), dim=1)
        return w * mask

    def forward(self, query: torch.Tensor, keys: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return (self.weights(query, keys, mask).unsqueeze(-1) * keys).sum(1)  # (B, D)


class AttentionalPairwise(nn.Module):
    """AFM pooling: sum over pairs i<j of a_ij (x_i * x_j), a = softmax_pairs(h^T ReLU(W (x_i*x_j) + b))."""

    def __init__(self, n_fields: int, dim: int, hidden: int):
        super().__init__()
        rows, cols = torch.triu_indices(n_fields, n_fields, offset=1)
        self.register_buffer("rows", rows, persistent=False)
        self.register_buffer("cols", cols, persistent=False)
        self.w = nn.Linear(dim, hidden)
        self.h = nn.Linear(hidden, 1, bias=False)

    def forward(self, fields: torch.Tensor) -> torch.Tensor:
        pairs = fields[:, self.rows] * fields[:, self.cols]  # (B, P, D)
        a = torch.softmax(self.h(torch.relu(self.w(pairs))), dim=1)  # (B, P, 1)
        return (a * pairs).sum(1)  # (B, D)


class SelfAttentionBlock(nn.Module):
    """Multi-head self-attention over the fields with a residual connection (AutoInt-style)."""

    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        self.attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.norm = nn.LayerNorm(dim)

    def forward(self, fields: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, F, D)`` -> ``(B, F, D)``; ``mask (B, F)``: the valid positions, the only keys attended to.

        A row without any valid position attends to all of them instead (no NaN); its outputs are
        padding for the caller to mask.
        """
        pad = None if mask is None else ~(mask | ~mask.any(-1, keepdim=True))
        out, _ = self.attn(fields, fields, fields, key_padding_mask=pad, need_weights=False)  # (B, F, D)
        return self.norm(torch.relu(out + fields))


class UserGuidedFusion(nn.Module):
    """Weights over modalities from the user embedding and each modality vector, softmax over present ones."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.wu = nn.Linear(dim, hidden)
        self.wc = nn.Linear(dim, hidden, bias=False)
        self.v = nn.Linear(hidden, 1, bias=False)

    def forward(self, user: torch.Tensor, modal: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``(B, D)``, ``(B, M, D)``, ``(B, M)`` -> ``(B, D)``."""
        s = self.v(torch.tanh(self.wu(user).unsqueeze(1) + self.wc(modal))).squeeze(-1)  # (B, M)
        w = torch.softmax(s.masked_fill(~mask, -1e9), dim=1) * mask
        return (w.unsqueeze(-1) * modal).sum(1)


class AUGRU(nn.Module):
    """GRU whose update gate is scaled by an attention score per step (DIEN's AUGRU)."""

    def __init__(self, d_in: int, hidden: int):
        super().__init__()
        self.hidden = hidden
        self.x2h = nn.Linear(d_in, 3 * hidden)
        self.h2h = nn.Linear(hidden, 3 * hidden)

    def forward(self, x: torch.Tensor, att: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """``x (B, T, D_in)``, ``att (B, T)``, ``lengths (B,)`` -> the state after each row's last step ``(B, H)``."""
        b, steps, _ = x.shape
        h = x.new_zeros(b, self.hidden)
        gx = self.x2h(x).unbind(1)  # T x (B, 3H), all steps at once; unbind: one gradient, not T full-size ones
        gates = (att * (torch.arange(steps, device=x.device) < lengths.unsqueeze(1))).unbind(1)  # T x (B,)
        for t in range(steps):
            r_x, u_x, n_x = gx[t].chunk(3, dim=-1)
            r_h, u_h, n_h = self.h2h(h).chunk(3, dim=-1)
            r, u = torch.sigmoid(r_x + r_h), torch.sigmoid(u_x + u_h)
            n = torch.tanh(n_x + r * n_h)
            u = gates[t].unsqueeze(-1) * u  # attention scales the update; padding steps keep h unchanged
            h = h + u * (n - h)
        return h


def squash(s: torch.Tensor, eps: float = 1e-9) -> torch.Tensor:
    """The capsule non-linearity ``|s|^2 / (1 + |s|^2) * s / |s|`` over the last dim (0 stays 0)."""
    sq = s.pow(2).sum(-1, keepdim=True)
    return s * (sq / (1 + sq) / torch.sqrt(sq + eps))


class TrendRouting(nn.Module):
    """Capsule-style dynamic routing of a sequence into K trends (MIND's / ComiRec-DR's behaviour-to-interest
    routing): each behaviour j is mapped per trend, u_kj = W_k x_j; for a few rounds its coupling c_kj is a
    softmax over the trends of the logits b_kj (zero at first), trend k is squash(sum_j c_kj u_kj), and b_kj
    grows by u_kj . v_k. Per-trend maps W_k (ComiRec's) rather than MIND's shared map with random logits:
    the trends differ from the first round and the layer stays deterministic (a saved model scores alike).
    """

    def __init__(self, dim: int, count: int, iterations: int):
        super().__init__()
        self.count, self.iterations = count, iterations
        self.maps = nn.Parameter(nn.init.xavier_uniform_(torch.empty(count, dim, dim)))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x (B, T, D)``, ``mask (B, T)`` -> trends ``(B, K, D)`` and couplings ``(B, K, T)`` (0 on padding).

        A row without a valid behaviour gives zero trends."""
        u = torch.einsum("kde,bte->bktd", self.maps, x)  # (B, K, T, D)
        logits = x.new_zeros(x.shape[0], self.count, x.shape[1])
        m = mask.unsqueeze(1).to(x.dtype)  # (B, 1, T)
        for r in range(self.iterations):
            c = torch.softmax(logits, dim=1) * m  # (B, K, T): each behaviour shared among the trends
            last = r == self.iterations - 1
            # the intermediate rounds only choose couplings: no gradient through them (ComiRec)
            uu = u if last else u.detach()
            v = squash((c.unsqueeze(-1) * uu).sum(2))  # (B, K, D)
            if not last:
                logits = logits + (uu * v.unsqueeze(2)).sum(-1)
        return v, c


# ---- top-K (models.rec) layers: graphs over the n_users + n_items nodes, users first ----


@contextmanager
def quiet_graph_warnings():
    """Silences two notices every run would print and no user can act on: PyG 2.8 importing
    ``torch.jit.script`` (deprecated in torch 2.15) and torch's "sparse CSR support is in beta"."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.script` is deprecated", category=FutureWarning)
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta", category=UserWarning)
        yield


def to_csr(coo: torch.Tensor) -> torch.Tensor:
    with quiet_graph_warnings():
        return coo.coalesce().to_sparse_csr()


def bipartite_edges(users: torch.Tensor, items: torch.Tensor, n_users: int) -> torch.Tensor:
    """(E,) user and item codes -> ``(2, 2E)`` edge_index over users then items, both directions."""
    u, i = users.long(), items.long() + n_users
    return torch.cat([torch.stack([u, i]), torch.stack([i, u])], dim=1)


def sparse_adjacency(edge_index: torch.Tensor, n_nodes: int, norm: str) -> torch.Tensor:
    """The ``(N, N)`` CSR matrix that aggregates messages along ``edge_index`` (row = target).

    ``norm``: ``sym`` is D^-1/2 A D^-1/2 (PyG's ``gcn_norm`` without self-loops: LightGCN), ``mean`` is
    D^-1 A (MMGCN's and GraphSAGE's mean over neighbours). CSR because ``torch.sparse.mm`` on it is ~7x
    faster than PyG's gather-scatter on an edge list (measured on 100k edges, one core).
    """
    if norm == "sym":
        with quiet_graph_warnings():
            from torch_geometric.nn.conv.gcn_conv import gcn_norm

        edge_index, weight = gcn_norm(edge_index, None, n_nodes, add_self_loops=False)
    elif norm == "mean":
        deg = torch.bincount(edge_index[1], minlength=n_nodes).float()
        weight = 1.0 / deg.clamp(min=1.0)[edge_index[1]]
    else:
        raise ValueError(f"unknown adjacency norm {norm!r}; valid: sym, mean")
    rows_cols = torch.stack([edge_index[1], edge_index[0]])
    return to_csr(torch.sparse_coo_tensor(rows_cols, weight, (n_nodes, n_nodes), check_invariants=True))


class SparseMatmul(torch.autograd.Function):
    """``adj @ x`` whose backward multiplies by a precomputed ``adj_t`` (= adj^T): torch's own backward
    transposes the CSR matrix on every call (a sort of all edges: ~30% of a graph model's step)."""

    @staticmethod
    def forward(ctx, adj: torch.Tensor, adj_t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        ctx.adj_t = adj_t
        return torch.sparse.mm(adj, x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return None, None, torch.sparse.mm(ctx.adj_t, grad)


def unit_rows(x: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """``x`` with each row scaled to unit L2 norm (rows shorter than ``eps`` divided by ``eps``): what
    ``torch.nn.functional.normalize(x, dim=1)`` gives, ~1.5x faster forward and backward on CPU (its
    backward divides by a stride-0 expanded norm, a slow path; here the scale broadcasts as a column)."""
    return x * (x * x).sum(1, keepdim=True).clamp_min(eps * eps).rsqrt()


def csr_rows(adj: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """The ``(len(rows), N)`` CSR matrix of ``adj``'s ``rows``: their edges only, in their order."""
    crow, col, val = adj.crow_indices(), adj.col_indices(), adj.values()
    counts = crow[rows + 1] - crow[rows]
    new_crow = torch.cat([counts.new_zeros(1), counts.cumsum(0)])
    # edge e of the k-th selected row sits at crow[rows[k]] + (e - new_crow[k]) in the full matrix
    edges = torch.arange(int(new_crow[-1]), device=adj.device) + torch.repeat_interleave(
        crow[rows] - new_crow[:-1], counts
    )
    size = (rows.shape[0], adj.shape[1])
    with quiet_graph_warnings():  # built from a valid matrix's own indices: the invariant check is skipped
        return torch.sparse_csr_tensor(new_crow, col[edges], val[edges], size, check_invariants=False)


def csr_block(adj: torch.Tensor, n_users: int) -> torch.Tensor:
    """The users-to-items block ``adj[:n_users, n_users:]`` of a bipartite adjacency (users first), as CSR."""
    block = csr_rows(adj, torch.arange(n_users, device=adj.device)).to_sparse_coo().coalesce()
    indices = block.indices() - torch.tensor([[0], [n_users]], device=adj.device)
    shape = (n_users, adj.shape[1] - n_users)
    return to_csr(torch.sparse_coo_tensor(indices, block.values(), shape, check_invariants=True))


class RowsMatmul(torch.autograd.Function):
    """``(adj @ x)[rows]`` from the selected rows' edges alone (``rows_adj = csr_rows(adj, rows)``, built once
    per batch and shared by the layers that read the same rows): what a batch's loss reads of a graph layer.

    The backward is adj^T @ (the gradient scattered to ``rows``) with the precomputed ``adj_t``, as
    ``SparseMatmul``'s: transposing the row slice per batch would sort its edges."""

    @staticmethod
    def forward(ctx, rows_adj: torch.Tensor, adj_t: torch.Tensor, rows: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        ctx.adj_t, ctx.rows = adj_t, rows
        return torch.sparse.mm(rows_adj, x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        full = grad.new_zeros(ctx.adj_t.shape[1], grad.shape[1]).index_copy_(0, ctx.rows, grad)
        return None, None, None, torch.sparse.mm(ctx.adj_t, full)


def transpose_csr(adj: torch.Tensor) -> torch.Tensor:
    """The CSR matrix of adj^T (computed once, for ``SparseMatmul``)."""
    return to_csr(adj.to_sparse_coo().t())


class _SelfAdjoint(torch.autograd.Function):
    """A linear map L with L^T = L: the gradient is L(grad), no transposed matrix, nothing saved."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, layers: LightPropagation, adj: torch.Tensor) -> torch.Tensor:
        ctx.layers, ctx.adj = layers, adj
        return layers.mean_of_layers(x, adj)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return ctx.layers.mean_of_layers(grad, ctx.adj), None, None


class LightPropagation(nn.Module):
    """LightGCN's propagation: K PyG ``LGConv`` layers on a normalised adjacency, the mean of layers 0..K.

    ``adj`` must be symmetric (D^-1/2 A D^-1/2 of an undirected graph): the map x -> mean_k adj^k x is then
    its own transpose, so the backward pass runs the same layers on the gradient (``_SelfAdjoint``).
    """

    def __init__(self, layers: int):
        super().__init__()
        with quiet_graph_warnings():
            from torch_geometric.nn import LGConv

        # normalize=False: the adjacency comes normalised once (sparse_adjacency(..., "sym")), not per call
        self.convs = nn.ModuleList(LGConv(normalize=False) for _ in range(layers))

    def mean_of_layers(self, x: torch.Tensor, adj: torch.Tensor) -> torch.Tensor:
        out, total = x, x
        for conv in self.convs:
            out = conv(out, adj)
            total = total + out
        return total / (len(self.convs) + 1)

    def forward(self, x: torch.Tensor, adj: torch.Tensor) -> torch.Tensor:
        return _SelfAdjoint.apply(x, self, adj)


def knn_adjacency(
    x: torch.Tensor, candidates: torch.Tensor, k: int, rows: torch.Tensor | None = None, chunk: int = 2048
) -> torch.Tensor:
    """One modality's item-item kNN graph: each item in ``rows`` (default: the candidates) is linked to its
    k most cosine-similar ``candidates`` (itself included when it is one, as FREEDOM's reference code),
    weight 1/k; other items get an empty row. A dense-free ``(N, N)`` COO matrix, rows computed ``chunk``
    at a time (memory O(chunk N)).
    """
    n = x.shape[0]
    rows = candidates if rows is None else rows
    k = min(k, int(candidates.sum()))
    if k == 0 or not rows.any():
        return torch.sparse_coo_tensor(torch.zeros(2, 0, dtype=torch.long), torch.zeros(0), (n, n)).coalesce()
    unit = nn.functional.normalize(x.float(), dim=1)
    out_rows, out_cols = [], []
    for start in torch.nonzero(rows).squeeze(1).split(chunk):
        sim = unit[start] @ unit.T  # (C, N)
        sim[:, ~candidates] = -float("inf")
        out_cols.append(sim.topk(k, dim=1).indices.reshape(-1))
        out_rows.append(start.repeat_interleave(k))
    r, c = torch.cat(out_rows), torch.cat(out_cols)
    vals = torch.full((r.shape[0],), 1.0 / k)
    return torch.sparse_coo_tensor(torch.stack([r, c]), vals, (n, n), check_invariants=True).coalesce()


def content_knn_graph(
    content: dict[str, tuple[torch.Tensor, torch.Tensor]],
    k: int,
    rows: torch.Tensor | None = None,
    candidates: torch.Tensor | None = None,
) -> torch.Tensor:
    """The kNN graphs of every modality, averaged per row over the modalities that item has (CSR).

    ``rows`` / ``candidates``: (n_items,) bool, which items get neighbours and which may be neighbours
    (default: all); a modality only ever links items that have it.
    """
    graphs, weights = [], []
    for x, present in content.values():
        present = present.bool()
        cand = present if candidates is None else present & candidates
        rws = present if rows is None else present & rows
        graphs.append(knn_adjacency(x, cand, k, rws))
        weights.append(rws.float())
    weight = torch.stack(weights)
    weight = weight / weight.sum(0).clamp(min=1.0)  # (M, I): row i averages over its modalities
    indices = torch.cat([g.indices() for g in graphs], dim=1)
    values = torch.cat([g.values() * w[g.indices()[0]] for g, w in zip(graphs, weight)])
    n = graphs[0].shape[0]
    return to_csr(torch.sparse_coo_tensor(indices, values, (n, n), check_invariants=True))


class MetaLinear(nn.Module):
    """MetaMMF's meta layer: a linear map whose weight is specific to each row, W_n = M + sum_s signal_ns T_s,
    with the signal produced from that item's own features by the meta-learner.
    """

    def __init__(self, signal_dim: int, d_in: int, d_out: int):
        super().__init__()
        self.t = nn.Parameter(nn.init.xavier_uniform_(torch.empty(signal_dim, d_in * d_out)))
        self.m = nn.Parameter(nn.init.xavier_uniform_(torch.empty(d_in, d_out)))
        self.shape = (signal_dim, d_in, d_out)

    def weights(self, signal: torch.Tensor) -> torch.Tensor:
        """``(N, S)`` -> each row's own weight ``(N, d_in, d_out)`` (for inspection; forward never builds it)."""
        return self.m + (signal @ self.t).view(-1, *self.shape[1:])

    def forward(self, signal: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``(N, S)``, ``(N, d_in)`` -> ``(N, d_out)``: x W_n without materialising N weight matrices.

        x W_n = x M + sum_s signal_ns (x T_s): one (d_in, S d_out) matmul, then the signal-weighted sum
        (an (N, S, d_out) intermediate, not the (N, S, d_in) outer product of signal and x)."""
        s, d_in, d_out = self.shape
        per_slice = (x @ self.t.view(s, d_in, d_out).transpose(0, 1).reshape(d_in, s * d_out)).view(-1, s, d_out)
        return x @ self.m + (signal.unsqueeze(2) * per_slice).sum(1)


class CPMetaLinear(nn.Module):
    """MetaMMF's lighter layer: the (S, d_in, d_out) weight tensor as a rank-R canonical-polyadic sum,
    T = sum_r c_r o a_r o b_r, so W_n = M + A diag(C signal_n) B: O(R (d_in + d_out + S)) parameters.
    """

    def __init__(self, rank: int, signal_dim: int, d_in: int, d_out: int):
        super().__init__()
        self.a = nn.Parameter(nn.init.xavier_uniform_(torch.empty(d_in, rank)))
        self.b = nn.Parameter(nn.init.xavier_uniform_(torch.empty(rank, d_out)))
        self.c = nn.Parameter(nn.init.xavier_uniform_(torch.empty(rank, signal_dim)))
        self.m = nn.Parameter(nn.init.xavier_uniform_(torch.empty(d_in, d_out)))

    def weights(self, signal: torch.Tensor) -> torch.Tensor:
        return self.m + torch.einsum("ir,nr,ro->nio", self.a, signal @ self.c.T, self.b)

    def forward(self, signal: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return x @ self.m + ((x @ self.a) * (signal @ self.c.T)) @ self.b

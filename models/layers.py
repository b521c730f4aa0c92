"""Shared PyTorch layers of the CTR models (field embeddings, modality projection, FM, MLP, attention).

Index 0 of every embedding table is padding/unknown and stays a zero vector.
"""

from __future__ import annotations

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

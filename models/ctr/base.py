"""The CTR model base: field embeddings, first-order terms and optional content, shared by every model.

A model maps a batch (dict of tensors: ``user``, ``item`` (B,), ``cat`` (B, C), ``multi`` (B, K, M),
``num`` (B, N), ``hist`` (B, H), ``hist_len`` (B,)) to click logits ``(B,)``. Content (the item's
modality vectors) lives in the model as buffers indexed by item code, so history items get theirs
by the same lookup. Models take plain sizes (``CtrSizes``), never a params class: the pipeline
(``pipeline.ctr.train``) turns ``ctr.*`` params into them.

Cold start: the ID tables hold one more row than there are items, the shared "unseen item" row.
An item outside ``seen`` (set by the training loop: the target items of the training samples) is looked
up there, in every ID table, so it is scored through that row plus its content, never through its
own untrained row; in training, ``id_dropout`` of the ID lookups go there too, which trains the
row (and teaches the model to score from content alone).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from models.layers import FieldEmbedding, ModalityProjection, TargetAttention, masked_mean

Content = dict[str, tuple[torch.Tensor, torch.Tensor]]  # modality -> ((n_items, D_m) vectors, (n_items,) mask)
# A content entry only models with ``uses_clips`` read (they take it out before the modalities):
# ((n_items, C, K) clip vectors, (n_items,) mask), ``pipeline.ctr.clips``
CLIP_KEY = "clips"


@dataclass(frozen=True)
class FeatureSpec:
    n_users: int
    n_items: int
    categorical: tuple[int, ...]  # vocabulary size per categorical field (0 = unknown included)
    multi: tuple[int, ...]
    n_numeric: int
    history: int

    @staticmethod
    def field_names(spec: Mapping[str, Any]) -> dict[str, list[str]]:
        """The side fields of a ``ctr_data`` spec per kind, in the one order of the tensor columns and
        the embedding tables: by name. Not the params' order: the spec is stored as JSON with sorted
        keys, so a params order would not survive the round trip and fields would meet another
        field's vocabulary."""
        return {kind: sorted(spec[kind]) for kind in ("categorical", "multi", "numeric")}

    @classmethod
    def from_meta(cls, spec: Mapping[str, Any]) -> FeatureSpec:
        names = cls.field_names(spec)
        return cls(
            spec["n_users"],
            spec["n_items"],
            tuple(spec["categorical"][n] for n in names["categorical"]),
            tuple(spec["multi"][n] for n in names["multi"]),
            len(names["numeric"]),
            spec["history"],
        )


@dataclass(frozen=True)
class CtrSizes:
    """The layer sizes a CTR model is built with (each model uses the ones it needs)."""

    embed_dim: int  # D of every field vector
    mlp: tuple[int, ...]  # hidden layer sizes of the deep part
    heads: int  # self-attention heads (amfr; must divide embed_dim)
    attention_dim: int  # hidden size of the attention scoring networks
    dropout: float
    id_dropout: float  # training: share of item ID lookups read through the shared unseen-item row
    session_count: int  # sdin: sessions per sample (the ``sess`` input's dim 1)
    session_length: int  # sdin: behaviours per session (the ``sess`` input's dim 2)
    trend_count: int  # dmr: K, the trends each sequence is routed into
    routing_iterations: int  # dmr: dynamic-routing rounds
    use_future: bool  # dmr: read the future sequence (``fut``, ``fut_ts``); false is its no-future ablation
    time_attention: bool  # dmr: time-gap embeddings in the attention; false is its no-time ablation
    clip_weight: float  # frame: weight of the clip-level loss beside the video-level one


class CtrModel(nn.Module):
    uses_sessions: ClassVar[bool] = False  # True: the batch must hold ``sess`` (B, session_count, session_length)
    # True: the batch must hold ``ts`` (B,) and ``hist_ts`` (B, H) and, when ``sizes.use_future``, the future
    # sequence ``fut`` / ``fut_ts`` (B, L) (``pipeline.ctr.future``)
    uses_future: ClassVar[bool] = False
    # True: content holds CLIP_KEY, the batch may hold ``skip`` (B,) (clips watched through, -1 unknown),
    # and training calls ``training_loss`` (its clip-level term) instead of the video BCE alone
    uses_clips: ClassVar[bool] = False

    def __init__(self, spec: FeatureSpec, sizes: CtrSizes, content: Content | None):
        super().__init__()
        d = sizes.embed_dim
        self.spec, self.dim = spec, d
        n_ids = spec.n_items + 1  # row n_items: the shared unseen item
        self.fields = FieldEmbedding(spec.n_users, n_ids, list(spec.categorical), list(spec.multi), spec.n_numeric, d)
        self.first_order = FieldEmbedding(
            spec.n_users, n_ids, list(spec.categorical), list(spec.multi), spec.n_numeric, 1
        )
        self.bias = nn.Parameter(torch.zeros(1))
        self.content = ModalityProjection(content, d) if content else None
        self.content_linear = nn.Linear(d, 1) if content else None
        self.n_fields = self.fields.n_fields + (1 if content else 0)
        self.unseen, self.id_dropout = spec.n_items, sizes.id_dropout
        self.register_buffer("seen", torch.ones(spec.n_items, dtype=torch.bool))  # the training loop sets it
        # The target's ID code, drawn once per forward: the field, first-order and history lookups
        # must agree on whether this step reads the target through the unseen row.
        self.register_forward_pre_hook(with_target_id)

    def id_codes(self, items: torch.Tensor) -> torch.Tensor:
        """The rows of the ID tables for item codes: unseen items (and, in training, ``id_dropout``
        of all) go to the shared unseen row; padding stays 0."""
        unseen = ~self.seen[items]
        if self.training and self.id_dropout > 0:
            unseen = unseen | (torch.rand(items.shape, device=items.device) < self.id_dropout)
        return torch.where(unseen & (items > 0), self.unseen, items)

    def modalities(self, items: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(..., M, D)`` projected modality vectors and ``(..., M)`` masks of the given items."""
        assert self.content is not None
        return self.content(items)

    def content_vector(self, items: torch.Tensor) -> torch.Tensor:
        """The items' fused content ``(..., D)``: mean of the present modalities."""
        return masked_mean(*self.modalities(items))

    def embed(
        self, batch: dict[str, torch.Tensor], content: torch.Tensor | None = None, item: torch.Tensor | None = None
    ) -> torch.Tensor:
        """All fields ``(B, F, D)``; the fused content of the target item is the last field.

        ``content``/``item``: the target's fused content / ID vector when already computed.
        """
        fields = self.fields(batch, item)
        if self.content is None:
            return fields
        c = self.content_vector(batch["item"]) if content is None else content
        return torch.cat([fields, c.unsqueeze(1)], dim=1)

    def linear(self, batch: dict[str, torch.Tensor], fields: torch.Tensor | None = None) -> torch.Tensor:
        """First-order terms ``(B,)``: a weight per field value, plus a linear map of the content field."""
        out = self.first_order(batch).sum((1, 2)) + self.bias
        if self.content_linear is not None and fields is not None:
            out = out + self.content_linear(fields[:, -1]).squeeze(-1)
        return out

    def target_and_history(
        self, batch: dict[str, torch.Tensor], hist: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """ID vectors ``(B, 1 + T, D)`` and fused content ``(B, 1 + T, D)`` (or None) of the target
        (position 0) and the history, looked up in one call each (one embedding gradient, not three)."""
        codes = torch.cat([batch["item"].unsqueeze(1), hist], dim=1)  # (B, 1 + T)
        content = self.content_vector(codes) if self.content is not None else None
        ids = torch.cat([batch["item_id"].unsqueeze(1), self.id_codes(hist)], dim=1)
        return self.fields.item(ids), content

    def add_content_attention(self, sizes: CtrSizes) -> None:
        """For models that pool the history by attention w.r.t. the target (``din``, ``mmie``): with content,
        a second target attention that pools the behaviours' fused content w.r.t. the target's, read by
        ``content_interests``. Their ID path stays exactly as without content: one attention over ID +
        content, or content at the target only, scored below no content on one synthetic profile or the
        other (docs/benchmarks.md, the CTR content tables)."""
        has_content = self.content is not None
        self.content_attention = TargetAttention(sizes.embed_dim, sizes.attention_dim) if has_content else None

    def content_interests(self, content: torch.Tensor | None, hist: torch.Tensor) -> list[torch.Tensor]:
        """``[]`` without content, else ``[(B, D)]``: what the user's content tastes say of the target's content
        (unseen items too). ``content``: ``(B, 1 + T, D)`` from ``target_and_history``; ``hist``: ``(B, T)``."""
        if content is None or self.content_attention is None:
            return []
        return [self.content_attention(content[:, 0], content[:, 1:], hist > 0)]


def with_target_id(model: CtrModel, args: tuple[dict[str, torch.Tensor]]) -> tuple[dict[str, torch.Tensor]]:
    """Forward pre-hook: the batch plus ``item_id``, the target's row in the ID tables (content keeps ``item``)."""
    batch = args[0]
    return ({**batch, "item_id": model.id_codes(batch["item"])},)

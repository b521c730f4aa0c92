"""``dmr``: Multi-trends enhanced Dynamic Micro-video Recommendation (Lu et al., arXiv 2110.03902).

Two sequences per sample: the user's history (``hist``, ``hist_ts``) and the **future** sequence
(``fut``, ``fut_ts``: what the user's implicit neighbours, the most Pearson-similar users, took most
recently before the sample; ``pipeline.ctr.future``). An item is its ID embedding plus its fused
content (as in ``din``). Each sequence is routed into K **trends** by capsule-style dynamic routing
(``TrendRouting``), then read by **multi-level time-aware attention** w.r.t. the target: at the item
level (target attention over its items) and at the trend level (target attention over its trends),
each key carrying the embedding of its time gap to the sample (bucketised log2 seconds; a trend's gap
embedding is the coupling-weighted mean of its items'). An MLP reads [fields, target, history
item-level, history trend-level, future item-level, future trend-level].

Ablations (``ctr.trends``): ``use_future: false`` drops the future sequence, ``count: 1`` routes
each sequence into one trend (the squashed sum of its mapped items), ``time_attention: false``
drops the time-gap embeddings.

Deliberate differences from the paper (its method section and code were not at hand: this follows its
abstract's three modules):
- the implicit user network is one static graph, Pearson correlation of binary training-positive
  vectors, top ``neighbours`` per user; the paper matches sequence *fragments* of similar users;
- the future sequence is the neighbours' most recent training positives strictly before the sample,
  not the fragment after the matched one (the most recent ones hold what neighbours did after the
  user's latest behaviour whenever they did anything; under a time split a strict "after" window is
  empty for the test samples of every user active since training ended, as the network may use
  training positives only); repeats across neighbours are kept;
- the network is fitted once on all training positives, so for a training sample it may have seen
  that user's later training behaviour when choosing whom to follow (never what they lend it);
- routing groups single items, not fragments, with per-trend maps (ComiRec-DR) instead of random logits;
- time enters as a learned embedding of the log2 gap bucket added to the attention keys, an
  assumption for the paper's multi-level time-aware attention;
- history and future are combined by concatenating their item- and trend-level interests into the MLP
  with the other fields (the paper's exact history-future prediction layer is not reproduced).
"""

from __future__ import annotations

import torch
from torch import nn

from models.ctr import MODELS
from models.ctr.base import CtrModel
from models.layers import MLP, TargetAttention, TrendRouting

TIME_BUCKETS = (
    32  # gap bucket 1 + floor(log2(1 + seconds)), capped: 32 holds every gap of 2^31 s (68 years) or more; 0 is padding
)


@MODELS.register("dmr")
class DMR(CtrModel):
    uses_future = True

    def __init__(self, spec, sizes, content):
        super().__init__(spec, sizes, content)
        d = sizes.embed_dim
        self.use_future = sizes.use_future
        self.time = nn.Embedding(TIME_BUCKETS + 1, d, padding_idx=0) if sizes.time_attention else None
        n_seqs = 2 if sizes.use_future else 1  # history, then future
        self.routing = nn.ModuleList(
            TrendRouting(d, sizes.trend_count, sizes.routing_iterations) for _ in range(n_seqs)
        )
        self.item_attention = nn.ModuleList(TargetAttention(d, sizes.attention_dim) for _ in range(n_seqs))
        self.trend_attention = nn.ModuleList(TargetAttention(d, sizes.attention_dim) for _ in range(n_seqs))
        self.mlp = MLP((self.n_fields + 1 + 2 * n_seqs) * d, sizes.mlp, sizes.dropout)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        width = max(int(batch["hist_len"].max()), 1)  # sequences are left-aligned: trim the padding
        seqs = [(batch["hist"][:, :width], batch["hist_ts"][:, :width])]
        if self.use_future:
            width = max(int((batch["fut"] > 0).sum(1).max()), 1)
            seqs.append((batch["fut"][:, :width], batch["fut_ts"][:, :width]))
        ids, content = self.target_and_history(batch, torch.cat([codes for codes, _ in seqs], 1))  # (B, 1 + T, D)
        fields = self.embed(batch, None if content is None else content[:, 0], ids[:, 0])  # (B, F, D)
        items = ids if content is None else ids + content  # an item = ID vector + fused content
        target, parts, start = items[:, 0], [fields.flatten(1), items[:, 0]], 1
        for k, (codes, when) in enumerate(seqs):
            x, start = items[:, start : start + codes.shape[1]], start + codes.shape[1]
            mask = codes > 0
            parts += self.attend(k, target, x, mask, self.gaps(batch["ts"], when, mask))
        return self.linear(batch, fields) + self.mlp(torch.cat(parts, dim=1)).squeeze(-1)

    def gaps(self, ts: torch.Tensor, when: torch.Tensor, mask: torch.Tensor) -> torch.Tensor | None:
        """``(B, T, D)`` embeddings of each behaviour's log2 time gap to its sample (None: no time attention)."""
        if self.time is None:
            return None
        seconds = (ts.unsqueeze(1) - when).clamp(min=0).float()
        bucket = (torch.log2(seconds + 1).floor().long() + 1).clamp(max=TIME_BUCKETS)
        return self.time(bucket * mask)

    def attend(
        self, k: int, target: torch.Tensor, x: torch.Tensor, mask: torch.Tensor, time: torch.Tensor | None
    ) -> list[torch.Tensor]:
        """Sequence ``k``'s item-level and trend-level interest ``(B, D)`` each, w.r.t. the target."""
        trends, coupling = self.routing[k](x, mask)  # (B, K, D), (B, K, T): routed on the items alone
        keys, trend_keys = x, trends
        if time is not None:
            keys = x + time
            share = coupling / coupling.sum(-1, keepdim=True).clamp(min=1e-9)  # each trend's weights over items
            trend_keys = trends + share @ time  # (B, K, D): plus its items' mean gap embedding
        present = mask.any(1, keepdim=True).expand(-1, trends.shape[1])  # (B, K): no behaviour, no trend
        return [self.item_attention[k](target, keys, mask), self.trend_attention[k](target, trend_keys, present)]

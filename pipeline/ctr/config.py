"""Sections ``ctr_data`` and ``ctr``: the CTR samples and the CTR model and its training."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from models.ctr import MODELS
from pipeline.core.config import FieldError, at_least, fraction, non_negative, positive
from pipeline.core.modality import FeaturesConfig
from pipeline.datasets import ADAPTERS, LabelRule


@dataclass(frozen=True)
class CtrSplitConfig:
    by: Literal["time", "random"]  # time: the latest samples are valid, then test
    valid: float
    test: float
    seed: int

    def __post_init__(self) -> None:
        if not (0 < self.valid < 1 and 0 < self.test < 1 and self.valid + self.test < 1):
            raise FieldError(
                "valid", f"and test need 0 < valid, 0 < test, valid + test < 1; got {self.valid}, {self.test}"
            )


@dataclass(frozen=True)
class CtrFeatures:
    categorical: tuple[str, ...]  # user or item table columns, one value each
    multi: tuple[str, ...]  # list-valued columns (mean of their embeddings)
    numeric: tuple[str, ...]  # standardised on the training split; each scales an embedding vector

    def __post_init__(self) -> None:
        for kind in ("categorical", "multi", "numeric"):
            names = getattr(self, kind)
            twice = sorted({n for n in names if names.count(n) > 1})
            if twice:  # one column per name and kind: a second listing would silently replace the first
                raise FieldError(kind, f"lists {twice} more than once")


@dataclass(frozen=True)
class CtrDataConfig:
    source: str  # a name in pipeline.datasets.ADAPTERS: log (stage log_data's folder, or a log file) | movielens | amazon | mmrec | lattice
    path: str  # the adapter's input: log: paths.log_data (the default) or a log file; mmrec/lattice/movielens: a folder; amazon: a .json[.gz] file or folder
    label: LabelRule  # rating-based sources only
    negatives: int  # sampled per positive when the log has no explicit labels
    negative_pool: Literal["all", "train"]  # training negatives from every item | items with a training positive
    history: int  # H: the last H positives strictly before each sample
    max_multi: int  # values kept per multi-valued field
    split: CtrSplitConfig
    unknown: Literal["drop", "error"]  # interactions naming videos/users absent from their tables
    features: CtrFeatures
    content: FeaturesConfig  # a dataset's own *_feat.npy (mmrec, lattice): PCA + normaliser fitted on training items
    seed: int

    def __post_init__(self) -> None:
        at_least(self, 1, "negatives", "history", "max_multi")
        ADAPTERS.check(self.source, "ctr_data.source")
        if not self.path:
            raise FieldError("path", f"is needed by ctr_data.source {self.source!r}: the dataset's folder or file")


@dataclass(frozen=True)
class CtrSessionConfig:
    """How ``sdin`` cuts each sample's history into sessions (the MMIE paper: 1800 s, 5, 10)."""

    gap_s: int  # a gap longer than this (seconds) between two behaviours starts a new session
    length: int  # behaviours kept per session: its most recent ones
    count: int  # sessions kept: the most recent ones

    def __post_init__(self) -> None:
        at_least(self, 1, "gap_s", "length", "count")


@dataclass(frozen=True)
class CtrTrendConfig:
    """How ``dmr`` builds its implicit user network and trends (Lu et al. 2021); the last two are its ablations."""

    count: int  # K: trends each sequence is routed into; 1 is the one-trend ablation
    routing_iterations: int  # dynamic-routing rounds: MIND and ComiRec settle in 3
    neighbours: int  # implicit user network: the most Pearson-similar users kept per user (caps the future's cost)
    future: int  # future sequence length: the neighbours' latest training positives before the sample
    use_future: bool  # false: the no-future ablation (history trends only, no user network built)
    time_attention: bool  # false: the no-time ablation (attention without the time-gap embeddings)

    def __post_init__(self) -> None:
        at_least(self, 1, "count", "routing_iterations", "neighbours", "future")


@dataclass(frozen=True)
class CtrFrameConfig:
    """``frame``'s clip level (Shang et al. 2023): clips and watch ratios come from ctr_data (``pipeline.ctr.clips``)."""

    clip_weight: float  # weight of the clip-level loss (watched-through vs left-at clips); 0: video loss only

    def __post_init__(self) -> None:
        non_negative(self, "clip_weight")


@dataclass(frozen=True)
class CtrConfig:
    model: str  # a name in models.ctr.MODELS (lr, fm, deepfm, din, amfr, mmie, sdin, dmr, frame)
    use_content: bool  # false: IDs and side features only (no items.parquet needed)
    content: tuple[str, ...]  # modality columns of paths.items, each projected by its own dense layer
    embed_dim: int
    mlp: tuple[int, ...]
    heads: int  # amfr: self-attention heads (must divide embed_dim)
    attention_dim: int  # hidden size of the attention scoring networks
    dropout: float
    lr: float
    weight_decay: float
    batch_size: int
    epochs: int
    patience: int  # early stopping: epochs without a better validation score (ctr.monitor)
    # epochs before early stopping may stop (the best epoch is still the one kept): on small or sparse
    # data the validation score can sit flat for the first epochs, and patience then quit before learning
    warmup: int
    monitor: Literal["auc", "logloss"]  # the validation score early stopping keeps the best epoch by
    id_dropout: (
        float  # training: a behaviour's or target's item ID read through the shared unseen row with this probability
    )
    sessions: CtrSessionConfig  # sdin only
    trends: CtrTrendConfig  # dmr only
    frame: CtrFrameConfig  # frame only
    seed: int
    threads: int  # torch CPU threads; 0 = torch's default

    def __post_init__(self) -> None:
        # Ranges checked when params load: a bad value is a one-line error naming the key, not a torch
        # traceback in ctr_train (or, for a NaN, a silently useless model).
        at_least(self, 1, "embed_dim", "heads", "attention_dim", "batch_size", "epochs", "patience")
        at_least(self, 0, "seed", "threads", "warmup")
        if any(not size >= 1 for size in self.mlp):
            raise FieldError("mlp", f"sizes must be >= 1, got {list(self.mlp)}")
        positive(self, "lr")
        non_negative(self, "weight_decay")
        fraction(self, "dropout")
        fraction(self, "id_dropout")
        if self.embed_dim % self.heads:
            raise FieldError("heads", f"({self.heads}) must divide embed_dim ({self.embed_dim})")
        MODELS.check(self.model)

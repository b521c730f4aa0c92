"""Sections ``rec_sample``, ``rec_data`` and ``rec``: the synthetic top-K dataset, the item table, the
top-K model and its training."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from models.rec import MODELS
from pipeline.core.config import FieldError, at_least, fraction, non_negative, positive
from pipeline.core.modality import FeaturesConfig
from pipeline.ctr.config import CtrSplitConfig
from pipeline.datasets import ADAPTERS, LabelRule


def _check_sample_split(cfg: Any) -> None:
    at_least(cfg, 2, "n_users", "n_items")
    at_least(cfg, 1, "factors", "interactions_per_user")
    non_negative(cfg, "popularity")
    if not 0 <= cfg.cold_items < 1:
        raise FieldError("cold_items", f"must be in [0, 1), got {cfg.cold_items!r}")
    if not (0 < cfg.valid and 0 < cfg.test and cfg.valid + cfg.test < 1):
        raise FieldError("valid", f"and test need 0 < valid, 0 < test, valid + test < 1; got {cfg.valid}, {cfg.test}")


@dataclass(frozen=True)
class EasyProfile:
    """``rec_sample.easy``: dense, Poisson activity, content = a noisy copy of the latent factors."""

    n_users: int
    n_items: int
    factors: int  # latent dimensions of users and items
    interactions_per_user: int  # mean; each user gets at least 5
    popularity: float  # exponent of the power-law item popularity (0: uniform)
    cold_items: float  # fraction of items held out of training: their interactions are valid/test only
    valid: float  # fraction of each user's warm interactions in valid, then test
    test: float
    dims: tuple[int, ...]  # feature dims of the modalities image, text, audio (1 to 3 of them)
    noise: float  # feature noise, relative to the signal's scale

    def __post_init__(self) -> None:
        _check_sample_split(self)
        non_negative(self, "noise")
        if not 1 <= len(self.dims) <= 3 or any(not d >= 1 for d in self.dims):
            raise FieldError("dims", f"must list 1 to 3 sizes >= 1 (image, text, audio), got {list(self.dims)}")


@dataclass(frozen=True)
class RealisticProfile:
    """``rec_sample.realistic``: shaped like a public micro-video dataset (sparse, heavy-tailed activity and
    popularity, content weakly aligned with who clicks what, nuisance dimensions, offsets, unequal scales)."""

    n_users: int
    n_items: int
    factors: int  # latent taste dimensions
    interactions_per_user: float  # mean of a log-normal count (median lower: heavy tail); each user >= 2
    activity_sigma: float  # sigma of log(interactions per user): the tail of user activity
    popularity: float  # exponent of the power-law item popularity
    sharpness: float  # weight of the user-item affinity against log popularity (0: popularity only)
    cold_items: float  # fraction of items held out of training: their interactions are valid/test only
    valid: float
    test: float
    modalities: tuple[str, ...]  # the *_feat.npy files written (image, text, audio)
    dims: tuple[int, ...]  # one size per modality
    alignment: float  # share of a signal dimension's variance that follows the taste factors (the rest: item style)
    nuisance: float  # fraction of each modality's dimensions that carry no taste at all
    style: float  # share of the non-taste variance that is low-rank item style shared by the modalities
    style_rank: int  # dimensions of the item style: few = item-item content similarity dominated by it
    scale_range: tuple[float, float]  # per-dimension std drawn log-uniformly in this range; means are non-zero

    def __post_init__(self) -> None:
        _check_sample_split(self)
        non_negative(self, "activity_sigma", "sharpness")
        fraction(self, "nuisance")
        for name in ("alignment", "style"):  # shares of a variance: both ends allowed (0 none, 1 all)
            if not 0 <= getattr(self, name) <= 1:
                raise FieldError(name, f"must be in [0, 1], got {getattr(self, name)!r}")
        if self.style_rank < 1:
            raise FieldError("style_rank", f"must be >= 1, got {self.style_rank!r}")
        if not self.modalities or len(self.modalities) != len(self.dims) or any(d < 1 for d in self.dims):
            raise FieldError("dims", f"need one size >= 1 per modality {list(self.modalities)}, got {list(self.dims)}")
        bad = sorted(set(self.modalities) - {"image", "text", "audio"})
        if bad or len(set(self.modalities)) != len(self.modalities):
            raise FieldError(
                "modalities", f"must be distinct names among image, text, audio; got {list(self.modalities)}"
            )
        lo, hi = self.scale_range
        if not 0 < lo <= hi:
            raise FieldError("scale_range", f"must be [low, high] with 0 < low <= high, got {list(self.scale_range)}")


@dataclass(frozen=True)
class RecSampleConfig:
    """Section ``rec_sample``: the synthetic top-K dataset (``pipeline.rec.synthetic``), one of two profiles."""

    name: str  # the .inter file is <name>.inter
    seed: int
    profile: Literal["realistic", "easy"]  # realistic: shaped like public micro-video data | easy: the old, dense one
    easy: EasyProfile
    realistic: RealisticProfile


@dataclass(frozen=True)
class RecDataConfig:
    source: str  # a name in pipeline.datasets.ADAPTERS: mmrec | lattice | log (paths.log_data: the video pipeline's) | movielens | amazon
    path: str  # the dataset's folder (or file); the default is the synthetic sample (stage rec_sample)
    label: LabelRule  # rating-based sources (movielens, amazon): which ratings are positives
    split: CtrSplitConfig  # only for sources without a given split (log, movielens, amazon)
    features: FeaturesConfig
    unseen_users: Literal["drop", "error"]  # a valid/test user without training interactions: dropped (counted) | error
    seed: int

    def __post_init__(self) -> None:
        ADAPTERS.check(self.source, "rec_data.source")
        if not self.path:
            raise FieldError("path", f"is needed by rec_data.source {self.source!r}: the dataset's folder or file")


@dataclass(frozen=True)
class RecConfig:
    model: str  # a name in models.rec.MODELS
    embed_dim: int
    layers: int  # graph propagation layers
    mlp: tuple[int, ...] | None  # hidden sizes (neumf's tower, metammf's fusion); null: the model's own default
    rank: int  # metammf_cp: CP rank
    knn: int  # item-item content graph neighbours
    dropout: float | None  # null: the model's own default (models/rec/zoo/<model>.py)
    content: tuple[str, ...]  # modalities of the item table the model sees; empty: all of them
    lr: float | None  # Adam learning rate; null: the model's own default
    reg: float | None  # weight of the model's L2 term (Loss.l2); null: the model's own default
    batch_size: int  # training positives per step
    epochs: int
    warmup: int  # epochs before early stopping may stop (validation recall is flat while embeddings spread out)
    eval_every: int  # epochs between validation rankings
    patience: int  # early stopping: validation rankings (not epochs) without a better recall@20
    cold_calibration: bool  # content models: fit the cold items' placement on validation (training the cold scorer)
    cold_budget: float  # share of the best validation recall@20 that ranking cold (new) items may cost
    profile_weight: float  # content models: the cold scorer's (content profile's) scores added to every warm item's, x the user's score std; 0: none
    eval_batch: int  # users per full-ranking batch
    seed: int
    threads: int  # torch CPU threads; 0 = torch's default

    def __post_init__(self) -> None:
        at_least(self, 1, "embed_dim", "rank", "knn", "batch_size", "epochs", "patience", "eval_batch", "eval_every")
        at_least(self, 0, "layers", "seed", "threads", "warmup")
        if self.mlp is not None and any(not size >= 1 for size in self.mlp):
            raise FieldError("mlp", f"sizes must be >= 1, got {list(self.mlp)}")
        if self.lr is not None:
            positive(self, "lr")
        if self.reg is not None:
            non_negative(self, "reg")
        if self.dropout is not None:
            fraction(self, "dropout")
        fraction(self, "cold_budget")
        non_negative(self, "profile_weight")
        MODELS.check(self.model)

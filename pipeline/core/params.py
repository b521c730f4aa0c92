"""Typed view of ``params.yaml``: one frozen dataclass per section, named as its DVC stage.

``load_params()`` reads the file and rejects unknown or missing keys, so every stage
sees the whole file validated. Paths live only in ``params.yaml`` (section ``paths``,
also interpolated into ``dvc.yaml``); no module hard-codes them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import yaml

from models.classify import AGGREGATIONS, FUSIONS
from models.ctr import MODELS
from models.rec import MODELS as REC_MODELS
from pipeline.audio.features import FEATURE_SETS
from pipeline.core.config import ConfigError, FieldError, Sections, build
from pipeline.core.modality import ModalityReduceConfig
from pipeline.datasets import ADAPTERS
from pipeline.execution.job import EXECUTORS
from pipeline.joint.feature import JOINTS
from pipeline.visual.extractor import EXTRACTORS

PARAMS_FILE = "params.yaml"


@dataclass(frozen=True)
class PathsConfig:
    sample: str  # the sample stage's output folder (videos/ + interactions.csv)
    manifest: str
    ingest_failures: str
    decoded: str  # folder of decode shards, index.parquet and failures.parquet
    placement: str  # placement: the device and precision that visual.device/precision resolve to on this machine
    audio_features: str  # the audio stage's store (one row per decoded video)
    audio_failures: str
    items: str  # reduce: one row per video, every modality reduced and normalised
    reduce_state: str  # reduce: fitted PCA/normaliser state (npz + state.json)
    reduce_metrics: str
    reduce_plots: str  # reduce: one cumulative explained-variance CSV per modality
    visual_features: str  # folder of visual_<extractor>.parquet stores (+ their failures tables)
    flow: str  # flow: optical flow of the decoded frames (the decoded store's layout, (T - 1, S, S, 2) uint8)
    joint_features: str  # folder of joint_<name>.parquet stores (+ their failures tables)
    ctr_data: str  # ctr_data: train/valid/test sample tables, vocabularies, summary.json
    ctr_model: str  # ctr_train: checkpoint and test predictions (not `models/`, the source package)
    ctr_metrics: str
    ctr_plots: str  # ctr_train: ROC curve and training curves (CSV)
    classify_model: str  # classify: checkpoint folder (model.pt: state dict + config JSON)
    classify_predictions: str  # classify: test-split predictions (Parquet)
    classify_live: str  # classify: the dvclive folder (metrics.json, plots/metrics/*.tsv, plots/sklearn/*.json)
    rec_sample: str  # rec_sample: the built-in synthetic top-K dataset, in MMRec's layout
    rec_data: str  # rec_data: interactions.parquet (codes + split), users/items.parquet, summary.json
    rec_model: str  # rec_train: checkpoint (model.pt)
    rec_metrics: str  # rec_train: test Recall/NDCG/Precision/HitRate@K, overall and cold
    rec_plots: str  # rec_train: training.csv (per-epoch loss and validation recall@20 / ndcg@20)


@dataclass(frozen=True)
class DataConfig:
    input: str  # a folder of videos (optionally holding manifest.csv/.parquet) or a manifest file
    interactions: str | None  # user-video interaction log (.csv or .parquet), or null


@dataclass(frozen=True)
class SampleConfig:
    seed: int
    n_videos: int
    min_seconds: float
    max_seconds: float
    short_seconds: float  # one clip this short, with fewer frames than decode.num_frames
    no_audio_fraction: float
    sizes: tuple[tuple[int, int], ...]  # (width, height) choices
    fps: tuple[float, ...]
    audio_rates: tuple[int, ...]
    n_users: int
    impressions_per_user: int

    def __post_init__(self) -> None:
        if self.n_videos < 4:
            raise ValueError("n_videos must be at least 4 (one per category)")
        if not 0 < self.min_seconds <= self.max_seconds:
            raise ValueError("need 0 < min_seconds <= max_seconds")
        if not 0 <= self.no_audio_fraction < 1:
            raise ValueError("no_audio_fraction must be in [0, 1)")
        if self.impressions_per_user > self.n_videos:
            raise ValueError("impressions_per_user cannot exceed n_videos")


@dataclass(frozen=True)
class SplitConfig:
    train: float
    valid: float  # test gets the rest
    seed: int
    stratify: bool  # balance labels across splits (when labels exist)

    def __post_init__(self) -> None:
        if not (0 < self.train < 1 and 0 <= self.valid < 1 and self.train + self.valid <= 1):
            raise ValueError("split fractions need 0 < train < 1, 0 <= valid and train + valid <= 1")


@dataclass(frozen=True)
class IngestConfig:
    extensions: tuple[str, ...]  # file suffixes scanned in a folder input
    split: SplitConfig
    allow_outside_paths: bool  # manifest paths may leave the manifest's folder (`../x.mp4`, `/data/x.mp4`)
    workers: int  # 0 = one per CPU core
    max_failure_rate: float

    def __post_init__(self) -> None:
        _check_rate(self.max_failure_rate)
        if self.workers < 0:
            raise ValueError("workers must be >= 0 (0 = one per core)")


@dataclass(frozen=True)
class DecodeConfig:
    num_frames: int
    sampling: Literal["uniform", "consecutive"]
    size: int  # frames are resized and centre-cropped to size x size
    audio_rate: int
    on_corrupt: Literal["keep", "fail"]  # ffmpeg reported damaged data: keep (stored, decode_errors > 0) | fail
    shards: int
    workers: int  # 0 = one per CPU core
    max_failure_rate: float

    def __post_init__(self) -> None:
        _check_rate(self.max_failure_rate)
        if self.num_frames < 1 or self.size < 8 or self.audio_rate < 1000 or self.shards < 1:
            raise ValueError("need num_frames >= 1, size >= 8, audio_rate >= 1000, shards >= 1")
        if self.workers < 0:
            raise ValueError("workers must be >= 0 (0 = one per core)")


@dataclass(frozen=True)
class FarnebackConfig:
    """cv2.calcOpticalFlowFarneback's parameters (OpenCV's documented example values are the defaults)."""

    pyr_scale: float  # image scale between pyramid levels (< 1)
    levels: int  # pyramid levels
    winsize: int  # averaging window: larger is smoother and more robust, blurs motion boundaries
    iterations: int  # per pyramid level
    poly_n: int  # pixel neighbourhood of the polynomial expansion (5 or 7)
    poly_sigma: float  # Gaussian std of that expansion (1.1 for poly_n 5, 1.5 for 7)

    def __post_init__(self) -> None:
        if not 0 < self.pyr_scale < 1:
            raise FieldError("pyr_scale", f"must be in (0, 1), got {self.pyr_scale!r}")
        _at_least(self, 1, "levels", "winsize", "iterations", "poly_n")
        _positive(self, "poly_sigma")


@dataclass(frozen=True)
class TVL1Config:
    """cv2.optflow.DualTVL1OpticalFlow's main parameters (the defaults are OpenCV's, as the I3D paper used)."""

    tau: float  # time step of the numerical scheme
    lambda_weight: float  # weight of the data term (OpenCV's lambda): smaller is smoother
    theta: float  # tightness of the attachment
    scales: int  # pyramid levels
    warps: int  # warpings per scale
    epsilon: float  # stopping threshold

    def __post_init__(self) -> None:
        _positive(self, "tau", "lambda_weight", "theta", "epsilon")
        _at_least(self, 1, "scales", "warps")


@dataclass(frozen=True)
class FlowConfig:
    """Section ``flow``: optical flow between consecutive decoded frames (``pipeline.flow``)."""

    method: Literal["farneback", "tvl1"]  # farneback: fast (the default) | tvl1: TV-L1 as in I3D, ~50x slower
    bound: float  # flow clipped to +-bound pixels and stored as uint8 (I3D and TSN: 20)
    farneback: FarnebackConfig
    tvl1: TVL1Config
    workers: int  # videos computed in parallel (threads; OpenCV releases the GIL); 0 = one per core
    max_failure_rate: float

    def __post_init__(self) -> None:
        _check_rate(self.max_failure_rate)
        _positive(self, "bound")
        if self.workers < 0:
            raise FieldError("workers", "must be >= 0 (0 = one per core)")


@dataclass(frozen=True)
class AudioConfig:
    sample_rate: int  # features are computed at this rate; other decoded rates are resampled (soxr_hq)
    window_ms: float  # librosa STFT window (n_fft = win_length) for mfcc and logmel_segments
    hop_ms: float
    n_mfcc: int
    mfcc_deltas: bool  # also summarise first and second MFCC deltas
    n_mels: int  # mel bands of logmel_segments and of the filterbank under the MFCCs
    segments: int  # equal time segments of logmel_segments
    pyaa_window_ms: float  # pyAudioAnalysis short-term window and step
    pyaa_step_ms: float
    feature_sets: tuple[str, ...]  # names in pipeline.audio.feature_set.FEATURE_SETS; the others' columns are absent
    workers: int  # worker processes, 0 = one per CPU core
    max_failure_rate: float

    def __post_init__(self) -> None:
        _check_rate(self.max_failure_rate)
        if self.workers < 0:
            raise ValueError("workers must be >= 0 (0 = one per core)")
        if self.sample_rate < 1000 or self.n_mfcc < 1 or self.n_mels < 1 or self.segments < 1:
            raise ValueError("need sample_rate >= 1000 and n_mfcc, n_mels, segments >= 1")
        if self.n_mfcc > self.n_mels:
            raise ValueError(f"n_mfcc ({self.n_mfcc}) cannot exceed n_mels ({self.n_mels})")
        if not 0 < self.hop_ms <= self.window_ms or not 0 < self.pyaa_step_ms <= self.pyaa_window_ms:
            raise ValueError("need 0 < hop_ms <= window_ms and 0 < pyaa_step_ms <= pyaa_window_ms")
        if not self.feature_sets or len(set(self.feature_sets)) != len(self.feature_sets):
            raise ValueError("feature_sets must name at least one set, each once")
        for i, name in enumerate(self.feature_sets):
            FEATURE_SETS.check(name, f"audio.feature_sets[{i}]")


def reduce_modalities() -> list[str]:
    """Every modality reduce can read: each registered extractor, and each audio feature set that is a vector."""
    audio = [name for name, fs in FEATURE_SETS.items() if fs.reduce_defaults is not None]
    return sorted({*EXTRACTORS.names(), *JOINTS.names(), *audio})


@dataclass(frozen=True)
class ReduceConfig:
    """Section ``reduce``: the general keys below, plus one optional ``reduce.<modality>`` section per
    modality (a registered extractor or a vector audio feature set); a modality without one uses the
    defaults its extractor or feature set declares."""

    missing: Literal["zero", "drop"]  # a video absent from a modality's store: zero-fill + mask, or drop it
    too_many_components: Literal["cap", "error"]  # n_components above min(train rows - 1, dims)
    solver: Literal["auto", "full", "randomized", "incremental"]
    max_fit_mb: int  # auto: the full solver up to this float64 training-matrix size, incremental above
    batch_rows: int  # IncrementalPCA batch size
    seed: int
    modalities: Mapping[str, ModalityReduceConfig] = field(default_factory=dict)  # reduce.<modality> sections

    __sections__: ClassVar[Sections] = Sections(
        "modalities", "reduce modality", reduce_modalities, lambda name: ModalityReduceConfig
    )


@dataclass(frozen=True)
class VisualConfig:
    extractors: tuple[str, ...]  # registered extractors to run: one DVC stage visual@<name> each
    device: str  # auto (CUDA when present) | cpu | cuda | cuda:N
    precision: Literal["auto", "fp32", "bf16", "int8"]  # auto: bf16 where the device runs it natively, else fp32
    batch_size: int  # videos per forward pass: bounds memory whatever the corpus size
    threads: int  # CPU threads for torch; 0 = one per core
    max_failure_rate: float
    calibration_clips: int  # precision int8: training-split clips the activation ranges are calibrated on
    compiled: tuple[str, ...]  # extractors whose fp32 head runs through torch.compile (a speed choice)
    # visual.<name>: each registered extractor's own section, built with the config class its module declares
    sections: Mapping[str, Any] = field(default_factory=dict)

    __sections__: ClassVar[Sections] = Sections(
        "sections", "visual extractor", EXTRACTORS.names, lambda name: EXTRACTORS.get(name).config
    )

    def __post_init__(self) -> None:
        _check_rate(self.max_failure_rate)
        for i, name in enumerate(self.extractors):
            EXTRACTORS.check(name, f"visual.extractors[{i}]")
            if name not in self.sections:
                raise ValueError(f"extractor {name!r} is in extractors but has no visual.{name} section")
        if len(set(self.extractors)) != len(self.extractors):
            raise ValueError("extractors lists a name twice")
        for i, name in enumerate(self.compiled):
            EXTRACTORS.check(name, f"visual.compiled[{i}]")
        if self.batch_size < 1 or self.threads < 0:
            raise ValueError("need batch_size >= 1 and threads >= 0 (0 = one per core)")
        if self.calibration_clips < 1:
            raise FieldError("calibration_clips", "must be >= 1")
        if self.device != "auto" and self.device != "cpu" and not self.device.startswith("cuda"):
            raise ValueError(f"device must be auto, cpu, cuda or cuda:N, got {self.device!r}")


@dataclass(frozen=True)
class JointConfig:
    """Section ``joint``: features computed from other visual stores (``pipeline.joint``)."""

    features: tuple[str, ...]  # registered joint features to compute: one DVC stage joint@<name> each
    max_failure_rate: float
    # joint.<name>: each registered joint feature's own section, built with the config class its module declares
    sections: Mapping[str, Any] = field(default_factory=dict)

    __sections__: ClassVar[Sections] = Sections(
        "sections", "joint feature", JOINTS.names, lambda name: JOINTS.get(name).config
    )

    def __post_init__(self) -> None:
        _check_rate(self.max_failure_rate)
        for i, name in enumerate(self.features):
            JOINTS.check(name, f"joint.features[{i}]")
            if name not in self.sections:
                raise ValueError(f"joint feature {name!r} is in features but has no joint.{name} section")
        if len(set(self.features)) != len(self.features):
            raise ValueError("features lists a name twice")


@dataclass(frozen=True)
class LabelRule:
    positive_min: float  # rating >= this is a positive (1)
    negative_max: float | None  # rating <= this is a negative (0); in between: dropped; null: implicit

    def __post_init__(self) -> None:
        if self.negative_max is not None and self.negative_max >= self.positive_min:
            raise ValueError("label.negative_max must be below label.positive_min")


@dataclass(frozen=True)
class CtrSplitConfig:
    by: Literal["time", "random"]  # time: the latest samples are valid, then test
    valid: float
    test: float
    seed: int

    def __post_init__(self) -> None:
        if not (0 < self.valid < 1 and 0 < self.test < 1 and self.valid + self.test < 1):
            raise ValueError("split fractions need 0 < valid, 0 < test and valid + test < 1")


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
    source: str  # a name in pipeline.datasets.ADAPTERS: log (data.interactions + the ingest manifest) | movielens | amazon | mmrec | lattice
    path: str | None  # the adapter's input (movielens: a folder; amazon: a .json[.gz] file or folder)
    label: LabelRule  # rating-based sources only
    negatives: int  # sampled per positive when the log has no explicit labels
    negative_pool: Literal["all", "train"]  # training negatives from every item | items with a training positive
    history: int  # H: the last H positives strictly before each sample
    max_multi: int  # values kept per multi-valued field
    split: CtrSplitConfig
    unknown: Literal["drop", "error"]  # interactions naming videos/users absent from their tables
    features: CtrFeatures
    seed: int

    def __post_init__(self) -> None:
        if self.negatives < 1 or self.history < 1 or self.max_multi < 1:
            raise ValueError("need negatives >= 1, history >= 1 and max_multi >= 1")
        ADAPTERS.check(self.source, "ctr_data.source")


@dataclass(frozen=True)
class CtrSessionConfig:
    """How ``sdin`` cuts each sample's history into sessions (the MMIE paper: 1800 s, 5, 10)."""

    gap_s: int  # a gap longer than this (seconds) between two behaviours starts a new session
    length: int  # behaviours kept per session: its most recent ones
    count: int  # sessions kept: the most recent ones

    def __post_init__(self) -> None:
        _at_least(self, 1, "gap_s", "length", "count")


@dataclass(frozen=True)
class CtrConfig:
    model: str  # a name in models.ctr.MODELS (lr, fm, deepfm, din, amfr, mmie, sdin)
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
    monitor: Literal["auc", "logloss"]  # the validation score early stopping keeps the best epoch by
    id_dropout: (
        float  # training: a behaviour's or target's item ID read through the shared unseen row with this probability
    )
    sessions: CtrSessionConfig  # sdin only
    seed: int
    threads: int  # torch CPU threads; 0 = torch's default

    def __post_init__(self) -> None:
        # Ranges checked when params load: a bad value is a one-line error naming the key, not a torch
        # traceback in ctr_train (or, for a NaN, a silently useless model).
        _at_least(self, 1, "embed_dim", "heads", "attention_dim", "batch_size", "epochs", "patience")
        _at_least(self, 0, "seed", "threads")
        if any(not size >= 1 for size in self.mlp):
            raise FieldError("mlp", f"sizes must be >= 1, got {list(self.mlp)}")
        _positive(self, "lr")
        _non_negative(self, "weight_decay")
        _fraction(self, "dropout")
        _fraction(self, "id_dropout")
        if self.embed_dim % self.heads:
            raise FieldError("heads", f"({self.heads}) must divide embed_dim ({self.embed_dim})")
        MODELS.check(self.model)


@dataclass(frozen=True)
class ClassifyModalityConfig:
    input: Literal["sequence", "vector"]  # sequence: per-frame / per-segment features; vector: items.parquet
    vector: str  # the items.parquet column used when input is vector (resnet152, c3d, i3d, scene, scene_action, i3d_two_stream | mfcc, pyaa)
    aggregation: str  # of a sequence: a name in models.classify.AGGREGATIONS
    project: bool  # a sequence's steps through reduce's fitted PCA + normaliser of `vector` (same input space)

    def __post_init__(self) -> None:
        AGGREGATIONS.check(self.aggregation)


@dataclass(frozen=True)
class SharedPrivateConfig:
    enabled: bool  # a private and a shared encoder per modality (their four codes are the fusion's tokens)
    similarity_weight: float  # mean squared distance of the shared visual and audio codes; 0 disables
    difference_weight: float  # relu(margin - KL(private || shared)); 0 disables
    difference_margin: float  # the KL beyond which private and shared codes are apart enough

    def __post_init__(self) -> None:
        _non_negative(self, "similarity_weight", "difference_weight", "difference_margin")


@dataclass(frozen=True)
class ClassifyConfig:
    modalities: tuple[Literal["visual", "audio"], ...]
    visual: ClassifyModalityConfig  # sequence: paths.visual_features/stores/visual_resnet152 <col>_seq (keep_sequence)
    audio: ClassifyModalityConfig  # sequence: the audio store's logmel_segments [segments x n_mels]
    hidden: int
    clusters: int  # K of netvlad
    fusion: str  # a name in models.classify.FUSIONS
    shared_private: SharedPrivateConfig
    dropout: float
    lr: float
    weight_decay: float
    batch_size: int
    epochs: int
    patience: int  # early stopping: epochs without a better `monitor` on the validation split
    monitor: Literal["valid_loss", "valid_accuracy"]
    seed: int
    threads: int  # torch CPU threads; 0 = torch's default
    backbone: Literal["none", "c3d", "i3d"]  # fine-tune this 3D CNN on decoded frames (visual.<name> weights)
    backbone_lr: float
    device: str  # cpu (deterministic, the default) | auto | cuda | cuda:N

    def __post_init__(self) -> None:
        if not self.modalities or len(set(self.modalities)) != len(self.modalities):
            raise ValueError("modalities must name visual and/or audio, each once")
        _at_least(self, 1, "hidden", "clusters", "batch_size", "epochs", "patience")
        _at_least(self, 0, "seed", "threads")
        _positive(self, "lr", "backbone_lr")
        _non_negative(self, "weight_decay")
        _fraction(self, "dropout")
        if self.device != "auto" and self.device != "cpu" and not self.device.startswith("cuda"):
            raise ValueError(f"device must be cpu, auto, cuda or cuda:N, got {self.device!r}")
        FUSIONS.check(self.fusion)
        if self.backbone != "none" and "visual" not in self.modalities:
            raise ValueError("backbone fine-tunes the visual branch: add visual to modalities")


def _check_sample_split(cfg: Any) -> None:
    _at_least(cfg, 2, "n_users", "n_items")
    _at_least(cfg, 1, "factors", "interactions_per_user")
    _non_negative(cfg, "popularity")
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
        _non_negative(self, "noise")
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
    scale_range: tuple[float, float]  # per-dimension std drawn log-uniformly in this range; means are non-zero

    def __post_init__(self) -> None:
        _check_sample_split(self)
        _non_negative(self, "activity_sigma", "sharpness")
        _fraction(self, "nuisance")
        if not 0 <= self.alignment <= 1:
            raise FieldError("alignment", f"must be in [0, 1], got {self.alignment!r}")
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
class RecFeaturesConfig:
    """How precomputed per-item features enter the item table: ``reduce``'s PCA + normaliser, fitted on
    training items (items with a training interaction)."""

    n_components: int | float | None  # int: components; float in (0, 1): variance kept; null: no PCA
    whiten: bool
    norm: Literal["minmax", "zscore", "none"]

    def __post_init__(self) -> None:
        ModalityReduceConfig(True, None, self.n_components, self.whiten, self.norm)  # the same checks as reduce.<m>


@dataclass(frozen=True)
class RecDataConfig:
    source: str  # a name in pipeline.datasets.ADAPTERS: mmrec | lattice (rec_data.path) | log (data.interactions + paths.items) | movielens | amazon
    path: str | None  # the dataset folder (or file) of every source but log; the default is the synthetic sample
    label: LabelRule  # rating-based sources (movielens, amazon): which ratings are positives
    split: CtrSplitConfig  # only for sources without a given split (log, movielens, amazon)
    features: RecFeaturesConfig
    unseen_users: Literal["drop", "error"]  # a valid/test user without training interactions: dropped (counted) | error
    seed: int

    def __post_init__(self) -> None:
        ADAPTERS.check(self.source, "rec_data.source")
        if self.source != "log" and not self.path:
            raise FieldError("path", f"is needed by rec_data.source {self.source!r}: the dataset's folder or file")


@dataclass(frozen=True)
class RecConfig:
    model: str  # a name in models.rec.MODELS
    embed_dim: int
    layers: int  # graph propagation layers
    mlp: tuple[int, ...]
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
    cold_calibration: bool  # content models: train the cold scorer and fit the cold items' placement on validation
    cold_budget: float  # share of the best validation recall@20 that ranking cold (new) items may cost
    eval_batch: int  # users per full-ranking batch
    seed: int
    threads: int  # torch CPU threads; 0 = torch's default

    def __post_init__(self) -> None:
        _at_least(self, 1, "embed_dim", "rank", "knn", "batch_size", "epochs", "patience", "eval_batch", "eval_every")
        _at_least(self, 0, "layers", "seed", "threads", "warmup")
        if any(not size >= 1 for size in self.mlp):
            raise FieldError("mlp", f"sizes must be >= 1, got {list(self.mlp)}")
        if self.lr is not None:
            _positive(self, "lr")
        if self.reg is not None:
            _non_negative(self, "reg")
        if self.dropout is not None:
            _fraction(self, "dropout")
        _fraction(self, "cold_budget")
        REC_MODELS.check(self.model)


@dataclass(frozen=True)
class ExecutorConfig:
    """Where per-video work runs (``pipeline.execution.executors``); never changes outputs, so no stage lists it."""

    kind: str  # a name in pipeline.execution.job.EXECUTORS: local (in-process) | ray (Ray Data)
    address: str  # ray: cluster address; "" = $RAY_ADDRESS, else a local runtime on this machine
    num_cpus: int  # ray local runtime: CPUs it may use; 0 = all
    num_gpus: float  # ray: GPUs per inference actor (fractions share a GPU); 0 = CPU actors
    actors: int  # ray: actor pool size per job; 0 = as many as the cluster's CPUs (GPUs) hold
    max_retries: int  # ray: restarts of a killed worker, retries of its batch, re-runs after a lost node (-1 = forever)

    def __post_init__(self) -> None:
        if self.num_cpus < 0 or self.num_gpus < 0 or self.actors < 0:
            raise ValueError("num_cpus, num_gpus and actors must be >= 0 (0 = auto)")
        if self.max_retries < -1:
            raise ValueError("max_retries must be >= 0, or -1 for unlimited")
        EXECUTORS.check(self.kind)


@dataclass(frozen=True)
class Params:
    paths: PathsConfig
    data: DataConfig
    sample: SampleConfig
    ingest: IngestConfig
    decode: DecodeConfig
    visual: VisualConfig
    flow: FlowConfig
    joint: JointConfig
    audio: AudioConfig
    reduce: ReduceConfig
    ctr_data: CtrDataConfig
    ctr: CtrConfig
    executor: ExecutorConfig
    classify: ClassifyConfig
    rec_sample: RecSampleConfig
    rec_data: RecDataConfig
    rec: RecConfig

    def __post_init__(self) -> None:
        # Cross-section checks: keys of two sections that are each valid but wrong together.
        backbone = [self.classify.backbone] if self.classify.backbone != "none" else []
        for name in dict.fromkeys([*self.visual.extractors, *backbone]):  # the extractors that run
            problem = self.frames_problem(name)
            if problem:
                raise ValueError(problem)
        for name in self.joint.features:  # a joint feature's inputs must be computed
            problem = JOINTS.get(name)(self.joint.sections[name]).problem(self.visual)
            if problem:
                raise ValueError(problem)

    def frames_problem(self, extractor: str) -> str | None:
        """Why ``visual.<extractor>.num_frames`` does not fit ``decode.num_frames``, or None when it does."""
        flow = EXTRACTORS.get(extractor).source == "flow"  # the flow store holds T - 1 frames (one per pair)
        frames = self.decode.num_frames - flow
        wanted = getattr(self.visual.sections.get(extractor), "num_frames", 0)  # 0: every decoded frame
        if wanted <= frames:
            return None
        store = f"the flow store's {frames} frames (decode.num_frames - 1)" if flow else f"decode.num_frames ({frames})"
        return (
            f"visual.{extractor}.num_frames ({wanted}) exceeds {store}: the extractor "
            f"would repeat frames, at {wanted / max(frames, 1):.3g}x the compute for no new information; "
            f"lower visual.{extractor}.num_frames or raise decode.num_frames"
        )


def _check_rate(rate: float) -> None:
    if not 0 <= rate <= 1:
        raise ValueError("max_failure_rate must be in [0, 1]")


# Range checks of single keys (FieldError: the message names the full key). Written as `not value >= x`
# so that a NaN (YAML .nan) fails them too.


def _at_least(cfg: Any, minimum: int, *names: str) -> None:
    for name in names:
        value = getattr(cfg, name)
        if not value >= minimum:
            raise FieldError(name, f"must be >= {minimum}, got {value!r}")


def _positive(cfg: Any, *names: str) -> None:
    for name in names:
        value = getattr(cfg, name)
        if not (value > 0 and math.isfinite(value)):
            raise FieldError(name, f"must be a finite number > 0, got {value!r}")


def _non_negative(cfg: Any, *names: str) -> None:
    for name in names:
        value = getattr(cfg, name)
        if not (value >= 0 and math.isfinite(value)):
            raise FieldError(name, f"must be a finite number >= 0, got {value!r}")


def _fraction(cfg: Any, name: str) -> None:
    value = getattr(cfg, name)
    if not 0 <= value < 1:
        raise FieldError(name, f"must be in [0, 1), got {value!r}")


def load_params(path: str | Path = PARAMS_FILE) -> Params:
    """Parse and validate the whole params file (a typo anywhere is an error everywhere)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"params file not found: {path}")
    with path.open(encoding="utf-8") as fh:
        raw = yaml.safe_load(fh) or {}
    return build(Params, raw)

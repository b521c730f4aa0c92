"""Typed view of ``params.yaml``: one frozen dataclass per section, named as its DVC stage, composed here.

``load_params()`` reads the file and rejects unknown or missing keys, so every stage sees the whole file
validated. Each family owns its section's config class next to its code (``pipeline/<family>/config.py``,
or the module of its registry where the config validates names against it); this module only composes
them, so ``pipeline.core`` knows no feature (issue 26). Paths live only in ``params.yaml`` (section
``paths``, also interpolated into ``dvc.yaml``); no module hard-codes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from pipeline.audio.features import AudioConfig
from pipeline.classify.config import ClassifyConfig, ClassifyModalityConfig, SharedPrivateConfig
from pipeline.core.config import ConfigError, FieldError, at_least, build, fraction, positive
from pipeline.core.modality import FeaturesConfig
from pipeline.ctr.config import (
    CtrConfig,
    CtrDataConfig,
    CtrFeatures,
    CtrFrameConfig,
    CtrSessionConfig,
    CtrSplitConfig,
    CtrTrendConfig,
)
from pipeline.datasets import LabelRule
from pipeline.decode.config import DecodeConfig
from pipeline.execution.job import ExecutorConfig
from pipeline.flow.config import FarnebackConfig, FlowConfig, TVL1Config
from pipeline.ingest.config import IngestConfig, SplitConfig
from pipeline.joint.feature import JOINTS, JointConfig
from pipeline.rec.config import (
    EasyProfile,
    RealisticProfile,
    RecConfig,
    RecDataConfig,
    RecSampleConfig,
)
from pipeline.reduce.config import ReduceConfig
from pipeline.visual.extractor import EXTRACTORS, VisualConfig

# every section's config class, importable from here (stages, the DAG writer and the docs read them by name)
__all__ = [
    "PARAMS_FILE",
    "AudioConfig",
    "ClassifyConfig",
    "ClassifyModalityConfig",
    "CtrConfig",
    "CtrDataConfig",
    "CtrFeatures",
    "CtrFrameConfig",
    "CtrSessionConfig",
    "CtrSplitConfig",
    "CtrTrendConfig",
    "DataConfig",
    "DecodeConfig",
    "EasyProfile",
    "ExecutorConfig",
    "FarnebackConfig",
    "FlowConfig",
    "IngestConfig",
    "JointConfig",
    "LabelRule",
    "Params",
    "PathsConfig",
    "RealisticProfile",
    "RecConfig",
    "RecDataConfig",
    "FeaturesConfig",
    "RecSampleConfig",
    "ReduceConfig",
    "SampleConfig",
    "SharedPrivateConfig",
    "SplitConfig",
    "TVL1Config",
    "VisualConfig",
    "load_params",
]

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
    log_data: str  # log_data: the interaction log + the item table (manifest + reduced features), a dataset folder


@dataclass(frozen=True)
class DataConfig:
    input: str  # a folder of videos (optionally holding manifest.csv/.parquet) or a manifest file
    interactions: str | None  # user-video interaction log (.csv or .parquet), or null
    # FRAME's clip grid: log_data cuts resnet152's per-frame sequence into this many equal segments per video
    # (clips.parquet); 0 = no clip features
    clips: int

    def __post_init__(self) -> None:
        at_least(self, 0, "clips")


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
    clips: int  # the hidden clip grid: equal segments per video, each vivid or grey (the per-clip interest)
    clip_tint: bool  # render the grey clips desaturated (FRAME's clip signal); false: hidden, the videos as before

    def __post_init__(self) -> None:
        at_least(self, 4, "n_videos", meaning="one per category")
        at_least(self, 1, "clips")
        positive(self, "min_seconds")
        if not self.min_seconds <= self.max_seconds:
            raise FieldError("max_seconds", f"must be >= min_seconds ({self.min_seconds}), got {self.max_seconds!r}")
        fraction(self, "no_audio_fraction")
        if self.impressions_per_user > self.n_videos:
            raise FieldError(
                "impressions_per_user", f"cannot exceed n_videos ({self.n_videos}), got {self.impressions_per_user!r}"
            )


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


def load_params(path: str | Path = PARAMS_FILE) -> Params:
    """Parse and validate the whole params file (a typo anywhere is an error everywhere)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"params file not found: {path}")
    with path.open(encoding="utf-8") as fh:
        raw = yaml.safe_load(fh) or {}
    return build(Params, raw)

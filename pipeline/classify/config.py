"""Section ``classify``: the multimodal fusion classifier and its training."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from models.classify import AGGREGATIONS, FUSIONS
from pipeline.core.config import FieldError, at_least, fraction, non_negative, positive


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
        non_negative(self, "similarity_weight", "difference_weight", "difference_margin")


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
            raise FieldError("modalities", f"must name visual and/or audio, each once; got {list(self.modalities)}")
        at_least(self, 1, "hidden", "clusters", "batch_size", "epochs", "patience")
        at_least(self, 0, "seed", "threads")
        positive(self, "lr", "backbone_lr")
        non_negative(self, "weight_decay")
        fraction(self, "dropout")
        if self.device != "auto" and self.device != "cpu" and not self.device.startswith("cuda"):
            raise FieldError("device", f"must be cpu, auto, cuda or cuda:N, got {self.device!r}")
        FUSIONS.check(self.fusion)
        if self.backbone != "none" and "visual" not in self.modalities:
            raise ValueError("backbone fine-tunes the visual branch: add visual to modalities")

"""``scene``: torchvision VGG16 with Places365-style weights, per frame, mean over the frames.

Emits two columns per video: ``scene_pool``, the 4096-d fc7 activations (after ReLU: the
"pooled" scene descriptor of the multimodal 3D-CNN paper), and ``scene_probs``, the softmax over
the scene classes. Both are the mean over ``num_frames`` frames spread evenly over the decoded
ones (probabilities are averaged after the softmax of each frame, so they still sum to 1).

The number of classes follows the weights: the rows of ``classifier.6.weight`` in the state dict
(365 for Places365; 365 with ``random``). Places365's own release is a Caffe model; convert it to
torchvision's VGG16 layout (``features.*``, ``classifier.*``), as for ``c3d``'s Sports-1M weights.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.core.modality import ModalityReduceConfig
from pipeline.visual.extractor import Extractor, register

if TYPE_CHECKING:
    import torch
    from torch import nn

POOL_DIM = 4096  # fc7
PLACES_CLASSES = 365
CLASSIFIER_KEY = "classifier.6.weight"


@dataclass(frozen=True)
class SceneConfig:
    weights: str  # random | places365 (a local file: no standard download) | path to a VGG16 state dict
    num_frames: int  # frames per video through VGG16, spread evenly over the decoded ones; 0 = all

    def __post_init__(self) -> None:
        if self.num_frames < 0:
            raise ValueError("num_frames must be >= 0 (0 = every decoded frame)")


def classes_in(spec: str) -> int:
    """Scene classes of the weights ``spec``: the classifier's rows in a state-dict file, else Places365's 365.

    A missing or unreadable file also gives 365: ``pipeline.visual.weights.load`` then reports it
    with the params key, as for every extractor.
    """
    path = Path(spec)
    if not path.is_file():
        return PLACES_CLASSES
    import torch

    try:  # memory-mapped: only the one tensor's shape is needed, not 500 MB of weights
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except (RuntimeError, OSError, ValueError, EOFError):
        return PLACES_CLASSES
    for wrapper in ("state_dict", "model_state", "model"):
        if isinstance(state, Mapping) and isinstance(state.get(wrapper), Mapping):
            state = state[wrapper]
    if isinstance(state, Mapping):
        for key, value in state.items():
            if key.removeprefix("module.") == CLASSIFIER_KEY:
                return int(value.shape[0])
    return PLACES_CLASSES


@register("scene")
class Scene(Extractor):
    config = SceneConfig
    reduce_defaults = ModalityReduceConfig(n_components=80)
    local_only_weights = {
        "places365": "there is no torchvision download of VGG16-Places365; convert the CSAIL release "
        "(vgg16_places365.caffemodel, github.com/CSAILVision/places365) to a torchvision VGG16 state dict "
        "(features.*, classifier.*)",
    }

    pool_column, probs_column = "scene_pool", "scene_probs"

    @classmethod
    def vector_column(cls, cfg: SceneConfig) -> str:
        return cls.pool_column

    @cached_property
    def n_classes(self) -> int:
        return classes_in(self.cfg.weights)

    @property
    def frames_used(self) -> int:
        return self.cfg.num_frames or self.num_frames

    def build(self) -> nn.Module:
        from torchvision.models import vgg16

        return vgg16(weights=None, num_classes=self.n_classes)

    def preprocess(self, frames: torch.Tensor) -> torch.Tensor:
        from pipeline.visual.clips import imagenet_frames

        return imagenet_frames(frames, self.frames_used)  # (B*F, 3, H, W)

    def head(self, model: nn.Module) -> nn.Module:
        import torch
        from torch import nn

        class PoolAndLogits(nn.Module):  # fc7 and the class logits side by side: (N, 4096 + classes)
            def __init__(self, vgg: nn.Module):
                super().__init__()
                self.trunk = nn.Sequential(vgg.features, vgg.avgpool, nn.Flatten(1), *vgg.classifier[:5])
                self.fc8 = vgg.classifier[6]

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                fc7 = self.trunk(x)
                return torch.cat([fc7, self.fc8(fc7)], dim=1)

        return PoolAndLogits(model)

    def aggregate(self, feats: torch.Tensor, batch: int) -> dict[str, torch.Tensor]:
        seq = feats.float().view(batch, -1, feats.shape[1])  # (B, F, 4096 + classes)
        probs = seq[..., POOL_DIM:].softmax(dim=-1)  # per frame, in fp32 (bf16 logits are upcast first)
        return {self.pool_column: seq[..., :POOL_DIM].mean(dim=1), self.probs_column: probs.mean(dim=1)}

    def dims(self) -> dict[str, list[int]]:
        return {self.pool_column: [POOL_DIM], self.probs_column: [self.n_classes]}

"""Built-in extractors; importing this package registers them (see ``pipeline.visual.extractor``)."""
from pipeline.visual.extractors import c3d, i3d, resnet152  # noqa: F401

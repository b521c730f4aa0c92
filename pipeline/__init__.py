"""Multimodal micro-video feature pipeline: the library behind the DVC stages in ``stages/``."""

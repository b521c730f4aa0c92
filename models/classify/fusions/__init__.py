"""Fusions of per-modality codes ``(B, M, D)`` with a presence mask ``(B, M)`` into one vector: one module
per member, named as the member (``classify.fusion``), each registering itself in
``models.classify.FUSIONS``; the shared base class is in ``_base``."""

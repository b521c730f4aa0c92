"""The CTR stages' former home of the dataset adapters, kept as an import path: the adapters are one
family shared with the top-K stages, in ``pipeline.datasets`` (one module per adapter in
``pipeline.datasets.adapters``)."""

from __future__ import annotations

from pipeline.datasets import ADAPTERS, RawData, SourceError, apply_rule, read_source, register

__all__ = ["ADAPTERS", "RawData", "SourceError", "apply_rule", "read_source", "register"]

"""Aggregations of a sequence of local features ``(B, T, D)`` into one video descriptor ``(B, d_out)``:
one module per member, named as the member (``classify.<modality>.aggregation``), each registering
itself in ``models.classify.AGGREGATIONS``; the shared base class is in ``_base``."""

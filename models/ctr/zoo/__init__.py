"""The CTR model zoo: one module per model, named as the model (``ctr.model``), each registering itself in
``models.ctr.MODELS``. Modules starting with ``_`` would be shared helpers, not models."""

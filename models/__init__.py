"""PyTorch model code (extractor backbones, fusion classifier, CTR models) assembled from shared layers."""

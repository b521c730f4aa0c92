"""Visual feature extraction: registry of extractors, weights, device/precision, batched runner."""

"""Top-K recommendation: dataset tables (data), the synthetic dataset, full-ranking metrics, the training loop."""

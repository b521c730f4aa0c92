"""CTR data, training and evaluation: sources (adapters), sample tables (build, data), training loop, metrics."""

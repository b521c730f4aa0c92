"""The classify stage's library: data assembly, training loop, metrics and the ablation helpers."""

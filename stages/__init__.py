"""One thin module per DVC stage (named as in dvc.yaml and params.yaml): parse, call pipeline/, write."""

"""Training engine: trainer, checkpoints, distributed helpers."""

"""Training only: the :class:`~.trainer.Trainer` and its parts, one job per module (context, optimizers,
schedule, EMA, RNG, feed, CUDA graphs, validation, recalibration, health, memory, run folder, run log,
signals, trackers). The trainer knows no method: it drives any pipeline through its declarations."""

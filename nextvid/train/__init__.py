"""Pretraining: schedule, step function, loop, checkpoints, distributed setup, metrics."""

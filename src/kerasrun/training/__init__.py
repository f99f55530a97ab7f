"""The training machinery: runtime set-up, callbacks, checkpoints, progress, K-fold, samplers."""

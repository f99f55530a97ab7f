"""What `predict` and `export-model` need: predictors and their inputs, ImageNet's classifiers,
the exporters and their parity check, and the float32 copy of a mixed precision model."""

"""kerasrun's Hydra launcher plugin (`hydra/launcher=processes`), found by Hydra's plugin scan."""

"""A run directory: its layout, results, resume, opening a run, the index behind `runs`."""

"""Scores, drawings and ensembles of trained runs."""

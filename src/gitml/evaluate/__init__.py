"""Evaluation: metrics overall, per class and per slice; plot data for ``dvc plots``."""

"""Garment detection: one detector for all classes, its annotations, training, evaluation and drawing."""

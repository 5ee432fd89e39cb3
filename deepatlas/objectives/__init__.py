"""Training objectives: smooth surrogates of discrete metrics (accuracy, F1) usable as losses."""

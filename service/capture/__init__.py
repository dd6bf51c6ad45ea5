"""Served uploads kept for learning: the writer that hands sampled predictions to the
capture store (``cnnlab.captures``, which training reads them back from)."""

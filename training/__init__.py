"""Offline training package: tutorial CNNs -> versioned SavedModels in a model repository."""

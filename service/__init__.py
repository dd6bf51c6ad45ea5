"""CNN Lab Server: a REST inference service for small image CNNs."""

__version__ = "0.1.0"

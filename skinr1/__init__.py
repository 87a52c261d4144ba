"""skinr1: a reproducible reimplementation of Skin-R1 (arXiv 2511.14900)."""

__version__ = "0.1.0"

"""Local Pseudo-Attributes for long-tailed recognition (Kim, Ke and Yu, NeurIPS 2022)."""

__version__ = "0.1.0"

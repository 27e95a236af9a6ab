"""Synthetic data in the real release formats, with planted and documented subgroup bias."""

from .generate import generate

__all__ = ["generate"]

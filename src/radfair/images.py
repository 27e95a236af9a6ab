"""Decoding radiographs to the network's size: light enough (numpy, Pillow; no torch) for every process of a
decoding pool to import quickly.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from .readers import read_gray


def resize_to_uint8(grey: np.ndarray, size: int) -> np.ndarray:
    """A float image in [0, 1] resized bilinearly (antialiased, in float) to (size, size), then quantised to uint8."""
    resized = Image.fromarray(np.asarray(grey, dtype=np.float32), mode="F").resize((size, size), Image.BILINEAR)
    return (np.clip(np.asarray(resized), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def decode_image(path: str, size: int, reduced: bool = True) -> np.ndarray:
    """A radiograph as a (size, size) uint8 array: read at its real depth (:func:`radfair.readers.read_gray`),
    resized bilinearly with antialiasing in float, then quantised. ``reduced``: a JPEG at least twice ``size``
    is decoded at reduced size first (DCT scaling, never below ``size``); equal to the full decode within the
    resize's own error (tested)."""
    return resize_to_uint8(read_gray(path, at_least=size if reduced else None), size)


def decode_chunk(paths: list[str], size: int) -> np.ndarray:
    """(len(paths), size, size) uint8: :func:`decode_image` of each path (one task of a decoding pool)."""
    return np.stack([decode_image(p, size) for p in paths])


__all__ = ["decode_chunk", "decode_image", "resize_to_uint8"]

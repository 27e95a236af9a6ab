"""One reading function per file kind; every decoder failure becomes one ``RadfairInputError``.

Every reader checks that the file exists, decodes it inside :func:`decoding`, and turns *any*
decoder exception (pandas, pyarrow, openpyxl, gzip/zlib, PIL, nibabel, numpy, EOFError included)
into ``<file>: cannot be read; expected <what> (<reason>)``. Callers never see a decoder traceback.

* :func:`read_csv` - ``.csv`` / ``.csv.gz``; an empty file is an error, a header-only file warns.
* :func:`read_parquet`, :func:`read_excel`, :func:`read_table` (dispatch on the suffix).
* :func:`read_gray` - PNG/JPEG (8- or 16-bit, grey or colour) -> float32 in [0, 1]; 16-bit images
  are read at their real depth (divided by 65535), 8-bit ones by 255, so both share one scale.
* :func:`read_nifti` - ``.nii`` / ``.nii.gz`` -> (float64 array, affine).
* :func:`read_npz` - a NumPy archive -> {name: array}.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import HEADER_ONLY, MISSING_FILE, UNREADABLE, RadfairInputError, RadfairWarning

TABLE_SUFFIXES = (".parquet", ".csv", ".csv.gz", ".xlsx")


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 120 else text[:117] + "..."


@contextlib.contextmanager
def decoding(path: str | os.PathLike, expected: str) -> Iterator[None]:
    """Turn any exception raised while decoding ``path`` into a one-line RadfairInputError."""
    try:
        yield
    except RadfairInputError:
        raise
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - the point: no decoder error escapes as a traceback
        raise RadfairInputError(UNREADABLE.format(path=path, expected=expected, reason=_reason(exc))) from None


def require_file(path: str | os.PathLike, what: str) -> Path:
    """``path`` as a Path; a missing file (or a folder) is a one-line input error."""
    path = Path(path)
    if not path.is_file():
        raise RadfairInputError(MISSING_FILE.format(path=path, what=what))
    return path


def read_csv(path: str | os.PathLike, what: str = "a CSV table", **kwargs) -> pd.DataFrame:
    """A CSV (optionally gzip-compressed) table; empty -> error, header only -> RadfairWarning."""
    path = require_file(path, what)
    if path.stat().st_size == 0:
        raise RadfairInputError(UNREADABLE.format(path=path, expected=what, reason="the file is empty"))
    with decoding(path, what):
        df = pd.read_csv(path, **kwargs)
    if df.empty:
        warnings.warn(HEADER_ONLY.format(path=path), RadfairWarning, stacklevel=2)
    return df


def read_parquet(path: str | os.PathLike, what: str = "a parquet table") -> pd.DataFrame:
    path = require_file(path, what)
    with decoding(path, f"{what} (parquet)"):
        return pd.read_parquet(path)


def read_excel(path: str | os.PathLike, what: str = "an Excel workbook") -> pd.DataFrame:
    path = require_file(path, what)
    with decoding(path, f"{what} (.xlsx)"):
        return pd.read_excel(path)


def read_table(path: str | os.PathLike, what: str = "table") -> pd.DataFrame:
    """A parquet, Excel or CSV(.gz) table chosen by suffix (anything else is read as CSV)."""
    name = Path(path).name.lower()
    if name.endswith(".parquet"):
        return read_parquet(path, what)
    if name.endswith(".xlsx"):
        return read_excel(path, what)
    return read_csv(path, what)


def read_gray(path: str | os.PathLike) -> np.ndarray:
    """A PNG/JPEG image as a 2-D float32 array in [0, 1] at its real bit depth.

    8-bit grey is divided by 255; 16-bit grey (PIL modes ``I;16*`` or ``I``) by 65535, so an 8-bit
    image and the same image stored in 16 bits (value x 257) read identically. Colour is converted
    to luminance (8-bit).
    """
    from PIL import Image

    path = require_file(path, "image listed in the cohort")
    expected = "a PNG or JPEG image"
    if path.stat().st_size == 0:
        raise RadfairInputError(UNREADABLE.format(path=path, expected=expected, reason="the file is empty"))
    with decoding(path, expected), Image.open(path) as image:
        image.load()
        if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
            array = np.asarray(image).astype(np.float64) / 65535.0
            return np.clip(array, 0.0, 1.0).astype(np.float32)
        if image.mode == "F":
            raise ValueError("floating-point images have no defined scale")
        return np.asarray(image.convert("L"), dtype=np.float32) / 255.0


def read_nifti(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """A NIfTI volume (``.nii`` or ``.nii.gz``) as (float64 data, 4x4 affine)."""
    import nibabel as nib

    path = require_file(path, "volume listed in the cohort")
    with decoding(path, "a NIfTI volume (.nii or .nii.gz)"):
        image = nib.load(path)
        data = np.asarray(image.get_fdata(), dtype=np.float64)
        if data.ndim != 3:
            raise ValueError(f"a 3-D volume, got shape {data.shape}")
        return data, image.affine


def read_npz(path: str | os.PathLike, what: str = "a NumPy .npz archive") -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` archive (pickled object arrays allowed: the file is the user's own)."""
    path = require_file(path, what)
    with decoding(path, what), np.load(path, allow_pickle=True) as npz:
        return {key: npz[key] for key in npz.files}

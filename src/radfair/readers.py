"""One reading function per file kind; every decoder failure becomes one ``RadfairInputError``.

Every reader checks that the file exists, decodes it inside :func:`decoding`, and turns *any*
decoder exception (pandas, pyarrow, openpyxl, gzip/zlib, PIL, nibabel, numpy, EOFError included)
into ``<file>: cannot be read; expected <what> (<reason>)``. Callers never see a decoder traceback.

* :func:`read_csv` - ``.csv`` / ``.csv.gz``; an empty file is an error, a header-only file warns.
* :func:`read_parquet`, :func:`read_excel`, :func:`read_table` (dispatch on the suffix).
* :func:`read_gray` - PNG/JPEG (8-, 12- or 16-bit, grey, grey+alpha, palette or colour) -> float32 in
  [0, 1], as displayed (EXIF orientation applied); 16-bit images are divided by 65535, 12-bit data
  stored in 16 bits (every value below 4096) by 4095 with a warning, 8-bit ones by 255.
* :func:`read_nifti` - ``.nii`` / ``.nii.gz`` -> (float64 array, affine); NaN voxels -> 0 with a
  warning (registration padding), infinite voxels are an error.
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


#: A 16-bit image whose every value is below this is 12-bit data (DICOM exports): divided by 4095.
TWELVE_BIT_LIMIT = 4096
TWELVE_BIT = "{path}: 16-bit image with every value below 4096 read as 12-bit data (divided by 4095, not 65535)"
NAN_VOXELS = "{path}: {count} NaN voxel(s) of {total} set to 0 (read as padding outside the field of view)"


def read_gray(path: str | os.PathLike, at_least: int | None = None) -> np.ndarray:
    """A PNG/JPEG image as a 2-D float32 array (H, W) in [0, 1], oriented as it is displayed.

    * ``at_least``: a JPEG at least twice that size on both sides is decoded at reduced size (libjpeg's DCT
      scaling by 1/2, 1/4 or 1/8, :meth:`PIL.Image.Image.draft`), to the smallest scale that keeps both sides
      ``>= at_least`` pixels: 4-8x less work for a 2,000-3,000 px radiograph read for a 224 px network. The
      caller then resizes as usual; other formats and smaller JPEGs are read at full size.

    * The EXIF ``Orientation`` tag is applied first (:func:`PIL.ImageOps.exif_transpose`), so an image
      shown 48 x 64 is read (48, 64) whatever order its pixels are stored in.
    * 16-bit grey (PIL modes ``I;16*`` or ``I``) is divided by 65535, so an 8-bit image and the same
      image stored in 16 bits (value x 257) read identically; **except** when every value is below
      4096: that is 12-bit data in a 16-bit container (DICOM exports), divided by 4095, with a
      RadfairWarning naming the file (the CLI folds many into one line with a count). A 16-bit image
      that is truly that dark is therefore brightened: store it with values x 16 to avoid the rule.
    * 8-bit grey is divided by 255; grey+alpha drops the alpha; palette, RGB(A) and CMYK images are
      converted to 8-bit luminance (ITU-R 601-2, PIL ``convert("L")``) and divided by 255.
    * Floating-point images (mode ``F``) have no defined scale: an error.

    Errors: a missing, empty or undecodable file is one RadfairInputError naming it.
    """
    from PIL import Image, ImageOps

    path = require_file(path, "image listed in the cohort")
    expected = "a PNG or JPEG image"
    if path.stat().st_size == 0:
        raise RadfairInputError(UNREADABLE.format(path=path, expected=expected, reason="the file is empty"))
    with decoding(path, expected), Image.open(path) as opened:
        if at_least and opened.format == "JPEG" and min(opened.size) >= 2 * at_least:
            opened.draft(opened.mode, (at_least, at_least))
        opened.load()
        image = ImageOps.exif_transpose(opened)
        if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
            array = np.asarray(image).astype(np.float64)
            scale = 65535.0
            if array.size and 0 < array.max() < TWELVE_BIT_LIMIT:
                scale = TWELVE_BIT_LIMIT - 1.0
                warnings.warn(TWELVE_BIT.format(path=path), RadfairWarning, stacklevel=2)
            return np.clip(array / scale, 0.0, 1.0).astype(np.float32)
        if image.mode == "F":
            raise ValueError("floating-point images have no defined scale")
        return np.asarray(image.convert("L"), dtype=np.float32) / 255.0


def read_nifti(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """A 3-D NIfTI volume (``.nii`` or ``.nii.gz``) as (float64 data (X, Y, Z), 4x4 affine).

    NaN voxels (registration tools write NaN outside the original field of view) are set to 0, the
    value of background, with one RadfairWarning naming the file and the count. Infinite voxels, a
    volume that is not 3-D, or an undecodable file are a RadfairInputError naming the file.
    """
    import nibabel as nib

    path = require_file(path, "volume listed in the cohort")
    with decoding(path, "a NIfTI volume (.nii or .nii.gz)"):
        image = nib.load(path)
        data = np.asarray(image.get_fdata(), dtype=np.float64)
        if data.ndim != 3:
            raise ValueError(f"a 3-D volume, got shape {data.shape}")
        affine = image.affine
    nan = np.isnan(data)
    if np.isinf(data).any():
        raise RadfairInputError(UNREADABLE.format(path=path, expected="a NIfTI volume of finite intensities",
                                                  reason=f"{int(np.isinf(data).sum())} infinite voxel(s)"))
    if nan.any():
        warnings.warn(NAN_VOXELS.format(path=path, count=int(nan.sum()), total=data.size), RadfairWarning, stacklevel=2)
        data[nan] = 0.0
    return data, affine


def read_npz(path: str | os.PathLike, what: str = "a NumPy .npz archive") -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` archive (pickled object arrays allowed: the file is the user's own)."""
    path = require_file(path, what)
    with decoding(path, what), np.load(path, allow_pickle=True) as npz:
        return {key: npz[key] for key in npz.files}

"""Atomic file writing and table I/O with radfair metadata.

Every output is written to a temporary file in the destination folder and renamed into place,
so a crash or an error never leaves a half-written file where a finished one is expected.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .errors import UNWRITABLE, RadfairInputError
from .readers import read_table as _read_table

METADATA_KEY = b"radfair"


def _file_mode() -> int:
    """The mode a plain ``open()`` would give a new file (0666 minus the umask); mkstemp's own is 0600."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    The file gets the permissions an ordinary write would (outputs are shared: reports, tables), not mkstemp's 0600.
    """
    path = Path(path)
    if path.is_dir():
        raise RadfairInputError(UNWRITABLE.format(path=path, expected="a file name", reason="it is a folder"))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix or path.suffix, dir=path.parent)
    except OSError as exc:
        raise RadfairInputError(UNWRITABLE.format(path=path, expected="a writable place", reason=exc.strerror or exc)) from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.exists():
            os.chmod(tmp_path, _file_mode())
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | os.PathLike, obj) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def _json_default(obj):
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def write_table(df: pd.DataFrame, path: str | os.PathLike, metadata: dict | None = None) -> None:
    """Write ``df`` as parquet (``.parquet``) or CSV (anything else), atomically.

    ``metadata`` (JSON-serialisable) is stored in the parquet schema under the key ``radfair``.
    """
    path = Path(path)
    with atomic_path(path) as tmp:
        if path.suffix == ".parquet":
            table = pa.Table.from_pandas(df, preserve_index=False)
            if metadata is not None:
                existing = table.schema.metadata or {}
                encoded = json.dumps(metadata, sort_keys=True, default=_json_default).encode()
                table = table.replace_schema_metadata({**existing, METADATA_KEY: encoded})
            pq.write_table(table, tmp)
        else:
            df.to_csv(tmp, index=False)


UINT16_LEVELS = 65535


def write_unit_volume(path: str | os.PathLike, data: np.ndarray, affine: np.ndarray) -> None:
    """Write an intensity volume atomically as NIfTI (``.nii`` or ``.nii.gz``) in uint16 with NIfTI scaling.

    ``data``: (X, Y, Z) intensities in any unit, expected non-negative (negative voxels are stored as 0);
    ``affine``: its 4x4 voxel-to-world matrix. With ``peak`` the volume's maximum, each voxel is stored as
    ``round(clip(data, 0, peak) / peak * 65535)`` with ``scl_slope = peak / 65535`` and ``scl_inter = 0`` (an
    all-zero or all-negative volume: zeros with slope 1), so :func:`radfair.readers.read_nifti` (which applies the
    scaling) returns the data within ``peak / 65535 / 2`` plus the header's float32 rounding of the slope (relative
    6e-8). A maximum that is not finite (NaN, inf) is a ValueError.

    Why uint16: every reader of the MRI pipeline's volumes (clean and undersampled ones of ``radfair degrade mri``,
    reconstructed ones) goes through :func:`radfair.training.volumes.unit_volume` (divide by the volume's own
    maximum, clip to [0, 1]) and then quantises to 8 bits, so float32 stored precision that nobody reads: uint16
    is half the raw bytes (about half gzip'd too), and 65535 = 255 x 257, so each 8-bit rounding boundary falls on a
    uint16 one: the 8-bit slices at the volume's own size are the float32 file's (but for float rounding at a
    tie), and resized ones differ only for pixels within half a uint16 step (7.6e-6 of the maximum) of an 8-bit
    boundary, by one level (tested). For intensity volumes only: label volumes (tumour masks) would not keep their
    integer labels.
    """
    import nibabel as nib

    values = np.asarray(data, dtype=np.float64)
    peak = float(values.max()) if values.size else 0.0
    if not math.isfinite(peak):
        raise ValueError(f"{path}: a volume of finite intensities is needed, its maximum is {peak}")
    if peak > 0:
        voxels, slope = np.round(np.clip(values, 0.0, peak) / peak * UINT16_LEVELS).astype(np.uint16), peak / UINT16_LEVELS
    else:
        voxels, slope = np.zeros(values.shape, np.uint16), 1.0
    image = nib.Nifti1Image(voxels, np.asarray(affine, dtype=np.float64))
    image.set_data_dtype(np.uint16)
    image.header.set_slope_inter(slope, 0.0)  # kept on save: the array is already uint16, so nibabel does not rescale
    with atomic_path(path, suffix=".nii.gz" if str(path).endswith(".nii.gz") else Path(path).suffix) as tmp:
        nib.save(image, tmp)


def read_table(path: str | os.PathLike, what: str = "table") -> pd.DataFrame:
    """Read a parquet, Excel or CSV table; any unreadable file is a one-line input error."""
    return _read_table(path, what)


def output_folder(path: str | os.PathLike, create: bool = True) -> Path:
    """Check that ``path`` can be a writable output folder (and create it); else one input error.

    With ``create=False`` nothing is made: the nearest existing folder above must be writable.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise RadfairInputError(UNWRITABLE.format(path=path, expected="a folder", reason="a file of that name exists"))
    if not create:
        base = next(p for p in (path, *path.absolute().parents) if p.exists())
        if not base.is_dir():
            raise RadfairInputError(UNWRITABLE.format(path=path, expected="a folder", reason=f"{base} is a file"))
        if not os.access(base, os.W_OK | os.X_OK):
            raise RadfairInputError(UNWRITABLE.format(path=path, expected="a writable folder", reason=f"{base}: permission denied"))
        return path
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RadfairInputError(UNWRITABLE.format(path=path, expected="a writable folder", reason=exc.strerror or exc)) from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise RadfairInputError(UNWRITABLE.format(path=path, expected="a writable folder", reason="permission denied"))
    return path


def output_file(path: str | os.PathLike) -> Path:
    """Check that ``path`` can be written as a file (its folder writable, not itself a folder)."""
    path = Path(path)
    if path.is_dir():
        raise RadfairInputError(UNWRITABLE.format(path=path, expected="a file name", reason="it is a folder"))
    output_folder(path.parent, create=False)
    return path


TEMP_MARK = ".tmp-"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temp_folders(path: str | os.PathLike) -> list[Path]:
    """Remove ``.<name>.tmp-<pid>-*`` folders beside ``path`` whose process no longer runs."""
    path = Path(path)
    removed = []
    if not path.parent.is_dir():
        return removed
    prefix = f".{path.name}{TEMP_MARK}"
    for candidate in path.parent.glob(f"{prefix}*"):
        pid_text = candidate.name[len(prefix):].split("-", 1)[0]
        if candidate.is_dir() and pid_text.isdigit() and not _pid_alive(int(pid_text)):
            shutil.rmtree(candidate, ignore_errors=True)
            removed.append(candidate)
    return removed


def temp_folder_beside(path: str | os.PathLike) -> Path:
    """A new hidden folder beside ``path`` named after this process (see remove_stale_temp_folders)."""
    path = Path(path)
    remove_stale_temp_folders(path)
    return Path(tempfile.mkdtemp(prefix=f".{path.name}{TEMP_MARK}{os.getpid()}-", dir=path.parent))


def read_metadata(path: str | os.PathLike) -> dict:
    """The radfair metadata stored in a parquet file's schema ({} if none)."""
    schema_meta = pq.read_schema(path).metadata or {}
    raw = schema_meta.get(METADATA_KEY)
    return json.loads(raw) if raw else {}


def file_sha256(path: str | Path) -> str:
    """sha256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()

"""Atomic file writing and table I/O with radfair metadata.

Every output is written to a temporary file in the destination folder and renamed into place,
so a crash or an error never leaves a half-written file where a finished one is expected.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .errors import MISSING_FILE, RadfairInputError

METADATA_KEY = b"radfair"


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix or path.suffix, dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
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


def read_table(path: str | os.PathLike, what: str = "table") -> pd.DataFrame:
    """Read a parquet or CSV table; a missing file is a one-line input error."""
    path = Path(path)
    if not path.is_file():
        raise RadfairInputError(MISSING_FILE.format(path=path, what=what))
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    return pd.read_csv(path)


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

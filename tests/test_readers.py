"""The reading layer: every decoder failure is one RadfairInputError naming the file."""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from radfair import readers
from radfair.errors import RadfairInputError, RadfairWarning


def test_csv_empty_header_only_truncated_gzip(tmp_path):
    (tmp_path / "e.csv").write_bytes(b"")
    with pytest.raises(RadfairInputError, match=r"e.csv: cannot be read; expected a CSV table \(the file is empty\)"):
        readers.read_csv(tmp_path / "e.csv")
    (tmp_path / "h.csv").write_text("a,b\n")
    with pytest.warns(RadfairWarning, match="h.csv: has a header but no rows"):
        assert readers.read_csv(tmp_path / "h.csv").empty
    body = "".join(f"{v},{v * 7 % 13}\n" for v in np.random.default_rng(0).integers(0, 10**9, 3000)).encode()
    packed = gzip.compress(b"a,b\n" + body)
    (tmp_path / "t.csv.gz").write_bytes(packed[: len(packed) // 2])
    with pytest.raises(RadfairInputError, match="t.csv.gz: cannot be read"):  # an EOFError, not "Aborted."
        readers.read_table(tmp_path / "t.csv.gz")


@pytest.mark.parametrize("name,content", [("g.parquet", b"garbage"), ("g.xlsx", b"PK\x03\x04garbage"),
                                          ("g.npz", b"garbage"), ("g.nii.gz", b"\x1f\x8b\x08garbage")])
def test_garbage_files_of_every_kind(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    reader = {"npz": readers.read_npz, "gz": readers.read_nifti}.get(name.rsplit(".", 1)[-1], readers.read_table)
    with pytest.raises(RadfairInputError, match=f"{name}: cannot be read; expected"):
        reader(path)


def test_missing_and_zero_byte_images(tmp_path):
    with pytest.raises(RadfairInputError, match="nope.png: file not found"):
        readers.read_gray(tmp_path / "nope.png")
    (tmp_path / "z.jpg").write_bytes(b"")
    with pytest.raises(RadfairInputError, match="z.jpg: cannot be read; expected a PNG or JPEG image"):
        readers.read_gray(tmp_path / "z.jpg")


def test_read_gray_scales_8_and_16_bit_alike(tmp_path):
    x = np.arange(256, dtype=np.uint8).reshape(16, 16)
    Image.fromarray(x).save(tmp_path / "a.png")
    Image.fromarray(x.astype(np.uint16) * 257).save(tmp_path / "b.png")
    np.testing.assert_allclose(readers.read_gray(tmp_path / "a.png"), readers.read_gray(tmp_path / "b.png"), atol=1e-6)


def test_good_tables_round_trip(tmp_path):
    df = pd.DataFrame({"a": [1, 2]})
    df.to_parquet(tmp_path / "t.parquet")
    df.to_csv(tmp_path / "t.csv.gz", index=False)
    for name in ("t.parquet", "t.csv.gz"):
        pd.testing.assert_frame_equal(readers.read_table(tmp_path / name), df)

import pandas as pd
import pytest

from radfair import errors
from radfair.io import atomic_path, read_metadata, read_table, write_table


def test_failed_write_leaves_previous_file_intact(tmp_path):
    target = tmp_path / "t.csv"
    target.write_text("old\n")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash mid-write")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["t.csv"]


def test_parquet_metadata_roundtrip(tmp_path):
    write_table(pd.DataFrame({"a": [1, 2]}), tmp_path / "x.parquet", {"policy": "zeros"})
    assert read_metadata(tmp_path / "x.parquet") == {"policy": "zeros"}
    assert read_table(tmp_path / "x.parquet")["a"].tolist() == [1, 2]


def test_error_messages_name_what_is_wrong():
    assert errors.MISSING_COLUMNS.format(path="f.csv", columns=["Age"], expected=["Age", "Sex"]) == (
        "f.csv: missing column(s) ['Age']; expected ['Age', 'Sex']"
    )
    assert errors.preview([3, 3, 1, 2, 5, 6, 7]) == "[3, 1, 2, 5, 6, ...]"
    with pytest.raises(errors.RadfairInputError, match="x.csv: file not found"):
        read_table("x.csv")


def test_atomic_writes_get_ordinary_file_permissions_not_mkstemps_0600(tmp_path):
    import os
    import stat

    from radfair.io import write_text

    old = os.umask(0o022)
    try:
        write_text(tmp_path / "report.html", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "report.html").stat().st_mode) == 0o644

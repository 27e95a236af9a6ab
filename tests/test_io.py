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


def _on_disk(path):
    """(dtype, scl_slope, scl_inter) as the file's header stores them (nibabel moves scaling off a loaded header)."""
    import gzip

    import nibabel as nib

    with gzip.open(path) as fh:
        header = nib.Nifti1Header.from_fileobj(fh)
    return header.get_data_dtype(), float(header["scl_slope"]), float(header["scl_inter"])


@pytest.mark.parametrize("peak", [1.0, 3.7, 812.0])
def test_a_volume_round_trips_through_uint16_within_half_a_step(tmp_path, peak):
    import numpy as np

    from radfair.io import write_unit_volume
    from radfair.readers import read_nifti

    rng = np.random.default_rng(7)
    data = rng.random((20, 18, 6)) * peak
    data[3, 4, 5] = peak  # the maximum is a voxel, as in every volume
    affine = np.diag([0.9, 0.9, 2.5, 1.0])
    write_unit_volume(tmp_path / "v.nii.gz", data, affine)
    back, back_affine = read_nifti(tmp_path / "v.nii.gz")
    # half a uint16 step, plus the header's float32 slope (relative 2**-24 of the peak)
    assert np.abs(back - data).max() <= peak / 65535 / 2 + peak * 2.0 ** -23
    np.testing.assert_allclose(back_affine, affine)
    dtype, slope, inter = _on_disk(tmp_path / "v.nii.gz")
    assert dtype == np.uint16 and inter == 0.0 and slope == pytest.approx(peak / 65535, rel=1e-7)


def test_an_all_zero_volume_stays_zero_and_negatives_are_stored_as_zero(tmp_path):
    import numpy as np

    from radfair.io import write_unit_volume
    from radfair.readers import read_nifti

    write_unit_volume(tmp_path / "zero.nii.gz", np.zeros((4, 5, 3), np.float32), np.eye(4))
    back, _ = read_nifti(tmp_path / "zero.nii.gz")
    assert back.shape == (4, 5, 3) and not back.any()
    assert _on_disk(tmp_path / "zero.nii.gz") == (np.uint16, 1.0, 0.0)
    data = np.array([-0.2, 0.0, 0.5, 1.0]).reshape(2, 2, 1)  # a real FLAIR volume has a few negative voxels
    write_unit_volume(tmp_path / "neg.nii", data, np.eye(4))
    np.testing.assert_allclose(read_nifti(tmp_path / "neg.nii")[0].ravel(), [0.0, 0.0, 0.5, 1.0], atol=1 / 65535)
    with pytest.raises(ValueError, match="finite"):
        write_unit_volume(tmp_path / "nan.nii.gz", np.full((2, 2, 2), np.nan), np.eye(4))
    assert not (tmp_path / "nan.nii.gz").exists()

"""Real-world image and volume encodings (cases D06 and D08 of the real-world case set), written here."""

import warnings

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from PIL import Image
from typer.testing import CliRunner

from radfair.cli import app
from radfair.errors import RadfairInputError, RadfairWarning
from radfair.readers import read_gray, read_nifti

runner = CliRunner()


def _images(folder):
    """The D08 pictures: one 48 x 64 gradient in 8-bit, 16-bit, 12-bit-in-16-bit, RGB, palette, grey+alpha, EXIF-rotated."""
    folder.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[:48, :64]
    g8 = (40 + 3 * xx + yy).clip(0, 255).astype(np.uint8)
    Image.fromarray(g8).save(folder / "grey8.png")
    Image.fromarray(g8.astype(np.uint16) * 257).save(folder / "grey16.png")
    Image.fromarray(g8.astype(np.uint16) * 16).save(folder / "grey12in16.png")
    Image.fromarray(np.stack([g8] * 3, -1)).save(folder / "rgb.jpg", quality=100)
    pal = Image.fromarray(255 - g8).convert("P")
    pal.putpalette(sum([[255 - i] * 3 for i in range(256)], []))
    pal.save(folder / "palette.png")
    Image.fromarray(np.stack([g8, np.full_like(g8, 255)], -1), mode="LA").save(folder / "grey_alpha.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    Image.fromarray(np.rot90(g8, 1).copy()).save(folder / "exif_rot.jpg", quality=100, exif=exif.tobytes())
    return g8.astype(np.float32) / 255


def test_D08_xray_image_modes(tmp_path):
    ref = _images(tmp_path / "img")
    tolerance = {"rgb.jpg": 0.01, "exif_rot.jpg": 0.01, "grey12in16.png": 0.005}
    for name in ("grey8.png", "grey16.png", "grey12in16.png", "rgb.jpg", "palette.png", "grey_alpha.png", "exif_rot.jpg"):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            got = read_gray(tmp_path / "img" / name)
        assert got.shape == ref.shape, name  # EXIF orientation applied: shown 48 x 64, read (48, 64)
        assert got.dtype == np.float32 and 0 <= got.min() and got.max() <= 1
        assert np.abs(got - ref).max() <= tolerance.get(name, 1e-6), name
        twelve = [w for w in caught if issubclass(w.category, RadfairWarning) and "12-bit" in str(w.message)]
        assert len(twelve) == (name == "grey12in16.png"), name
    # degrading them all gives comparable quality: the 12-bit image is no longer read nearly black (PSNR ~40 dB)
    names = sorted(p.name for p in (tmp_path / "img").iterdir())
    pd.DataFrame({"image_id": [f"x:{n}" for n in names], "path": [str(tmp_path / "img" / n) for n in names]}).to_csv(
        tmp_path / "cohort.csv", index=False)
    r = runner.invoke(app, ["degrade", "xray", "--cohort", str(tmp_path / "cohort.csv"), "--photons", "3000",
                            "--size", "32", "--out", str(tmp_path / "out")])
    assert r.exit_code == 0, r.output
    assert "grey12in16.png: 16-bit image with every value below 4096 read as 12-bit data" in r.output
    psnr = pd.read_csv(tmp_path / "out" / "degraded.csv").set_index("image_id")["psnr"]
    assert psnr.max() - psnr.min() < 3


def _volumes(folder):
    """The D06 volumes: a FLAIR with NaN in two edge rows (outside the field of view), and the same with 0 there."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    x, y = np.mgrid[:32, :32]
    brain = ((x - 16) ** 2 + (y - 16) ** 2 < 100).astype(np.float32)
    data = np.stack([brain * (300 + 50 * rng.random((32, 32))) for _ in range(3)], -1).astype(np.float32)
    nan_vol = data.copy()
    nan_vol[:2] = np.nan
    nib.save(nib.Nifti1Image(nan_vol, np.eye(4)), folder / "case_nan_FLAIR.nii.gz")
    nib.save(nib.Nifti1Image(np.nan_to_num(nan_vol), np.eye(4)), folder / "case_zero_FLAIR.nii.gz")
    return nan_vol


def test_D06_nifti_nan_degrade(tmp_path):
    nan_vol = _volumes(tmp_path / "vols")
    with pytest.warns(RadfairWarning, match=r"case_nan_FLAIR.nii.gz: 192 NaN voxel\(s\) of 3072 set to 0"):
        data, _ = read_nifti(tmp_path / "vols" / "case_nan_FLAIR.nii.gz")
    np.testing.assert_array_equal(data, np.nan_to_num(nan_vol))
    pd.DataFrame({"image_id": ["ucsf-pdgm:NAN", "ucsf-pdgm:ZERO"], "patient_id": ["ucsf-pdgm:NAN", "ucsf-pdgm:ZERO"],
                  "path": [str(tmp_path / "vols" / f"case_{k}_FLAIR.nii.gz") for k in ("nan", "zero")]}).to_csv(
        tmp_path / "cohort.csv", index=False)
    r = runner.invoke(app, ["degrade", "mri", "--cohort", str(tmp_path / "cohort.csv"), "--acceleration", "4",
                            "--out", str(tmp_path / "out")])
    assert r.exit_code == 0, r.output
    assert "192 NaN voxel(s) of 3072 set to 0" in r.output
    table = pd.read_csv(tmp_path / "out" / "degraded.csv").set_index("image_id")
    assert np.isfinite(table["psnr"]).all() and table.loc["ucsf-pdgm:NAN", "psnr"] == pytest.approx(table.loc["ucsf-pdgm:ZERO", "psnr"])
    for path in (tmp_path / "out").glob("*/*.nii.gz"):
        assert not np.isnan(nib.load(path).get_fdata()).any(), path
    summary = pd.read_csv(tmp_path / "out" / "quality_summary.csv")
    assert summary.loc[0, "n"] == 2 and summary.loc[0, "n_not_finite"] == 0


def test_infinite_voxels_are_an_error(tmp_path):
    data = np.ones((4, 4, 2), dtype=np.float32)
    data[0, 0, 0] = np.inf
    nib.save(nib.Nifti1Image(data, np.eye(4)), tmp_path / "inf.nii.gz")
    with pytest.raises(RadfairInputError, match=r"inf.nii.gz: cannot be read; .*1 infinite voxel"):
        read_nifti(tmp_path / "inf.nii.gz")


def test_summary_counts_and_warns_about_non_finite_metrics(tmp_path):
    from radfair.degradation.run import _finish

    table = pd.DataFrame({"image_id": ["a", "b", "c"], "level": "L", "psnr": [20.0, np.nan, np.inf], "ssim": [0.5, np.nan, 1.0]})
    cohort = pd.DataFrame({"image_id": ["a", "b", "c"], "sex": ["Male", "Male", "Female"]})
    with pytest.warns(RadfairWarning, match=r"2 image\(s\) \['b', 'c'\] have a PSNR or SSIM that is not a finite number"):
        _finish(tmp_path, table, cohort)
    summary = pd.read_csv(tmp_path / "quality_summary.csv").set_index(["attribute", "group"])
    assert summary.loc[("(all)", "(all)"), "psnr"] == 20.0 and summary.loc[("(all)", "(all)"), "n_not_finite"] == 2
    assert summary.loc[("sex", "Female"), "n"] == 1 and summary.loc[("sex", "Female"), "n_not_finite"] == 1

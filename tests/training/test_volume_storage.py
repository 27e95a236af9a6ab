"""MRI volumes stored as uint16 (:func:`radfair.io.write_unit_volume`) give the consumers the slices float32 gave.

Every consumer reads a volume through :func:`radfair.training.volumes.unit_volume` and quantises it to 8 bits
(``_quantised`` of the reconstruction, :func:`radfair.training.inputs.resize_to_uint8` of the slice cache), so
a uint16 file may differ from a float32 one only where a value sits within half a uint16 step of an 8-bit rounding
boundary, and then by one level. At the volume's own size even that cannot happen (65535 = 255 x 257: every 8-bit
boundary is a uint16 rounding boundary) but for float rounding at a tie: none of these volumes' voxels differ.
Resized (interpolated) slices differ in 1-161 pixels of 55-221 thousand here.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from radfair.data.synthetic.mri import phantom, simulate_mri_patients
from radfair.degradation.mri import Undersample
from radfair.io import write_unit_volume
from radfair.readers import read_nifti
from radfair.training.inputs import resize_to_uint8
from radfair.training.reconstruct_volumes import _quantised
from radfair.training.volumes import unit_volume

FIXTURE = Path(__file__).parents[1] / "fixtures" / "tcga_lgg_flair" / "TCGA-DU-7294_FLAIR.nii.gz"


def _volumes() -> dict[str, np.ndarray]:
    """Clean and R=8 undersampled volumes, scaled by their maximum as ``radfair degrade mri`` writes them: a synthetic
    phantom (the demo's generator) and the real TCGA-LGG FLAIR fixture (int16 with a few negative voxels)."""
    rng = np.random.default_rng(3)
    row = next(simulate_mri_patients(1, rng).itertuples())
    real, _ = read_nifti(FIXTURE)
    out = {}
    for name, vol in (("phantom", phantom(row, (64, 64, 24), rng)[0].astype(np.float64)), ("tcga", real)):
        vol = vol / vol.max()
        slices = torch.from_numpy(np.moveaxis(vol, -1, 0))[:, None]
        degraded = Undersample(vol.shape[:2], acceleration=8.0)(slices, generator=torch.Generator().manual_seed(0))
        out[f"{name}-clean"], out[f"{name}-R8"] = vol, np.moveaxis(degraded[:, 0].numpy(), 0, -1)
    return out


VOLUMES = _volumes()


def _both(tmp_path, data) -> tuple[np.ndarray, np.ndarray]:
    """unit_volume of the same data written as float32 (the old files) and as uint16."""
    nib.save(nib.Nifti1Image(data.astype(np.float32), np.eye(4)), tmp_path / "f32.nii.gz")
    write_unit_volume(tmp_path / "u16.nii.gz", data, np.eye(4))
    assert nib.load(tmp_path / "u16.nii.gz").get_data_dtype() == np.uint16
    return unit_volume(str(tmp_path / "f32.nii.gz")), unit_volume(str(tmp_path / "u16.nii.gz"))


def _near_boundary(unit: np.ndarray, within: float = 1e-4) -> np.ndarray:
    """Whether a [0, 1] value lies within ``within`` of an 8-bit rounding boundary (k + 0.5) / 255."""
    scaled = unit.astype(np.float64) * 255
    return np.abs(scaled - np.floor(scaled) - 0.5) < within * 255


@pytest.mark.parametrize("name", sorted(VOLUMES))
def test_the_8_bit_slices_of_a_uint16_file_are_those_of_the_float32_file(tmp_path, name):
    f32, u16 = _both(tmp_path, VOLUMES[name])
    assert np.abs(f32 - u16).max() <= 1 / 65535 / 2 + 1e-6
    a = np.round(_quantised(f32).numpy() * 255).astype(int)  # what the reconstructors see
    b = np.round(_quantised(u16).numpy() * 255).astype(int)
    differs = a != b
    assert np.abs(a - b).max() <= 1 and differs.mean() < 1e-3
    assert _near_boundary(np.moveaxis(f32, -1, 0)[:, None][differs]).all()


@pytest.mark.parametrize("name", sorted(VOLUMES))
def test_the_slice_cache_resized_from_a_uint16_file_differs_by_at_most_one_level_rarely(tmp_path, name):
    f32, u16 = _both(tmp_path, VOLUMES[name])
    for size in (48, 96):  # down and up from the volumes' in-plane 64 and 120
        a = np.stack([resize_to_uint8(f32[..., z], size) for z in range(f32.shape[-1])]).astype(int)
        b = np.stack([resize_to_uint8(u16[..., z], size) for z in range(u16.shape[-1])]).astype(int)
        assert np.abs(a - b).max() <= 1 and (a != b).mean() < 1e-3, (size, (a != b).mean())

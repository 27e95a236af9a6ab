"""Brain MRI phantoms (FLAIR-like) with glioma masks, written as UCSF-PDGM releases.

Tissue: brain ellipsoid (white matter 0.45, grey-matter rim 0.55), dark ventricles (CSF 0.1), a
bright skull/scalp shell. Tumour appearance depends on grade and type (BraTS labels as in
UCSF-PDGM: 1 necrotic core, 2 oedema / non-enhancing, 4 enhancing): glioblastoma (grade 4) is
large with oedema, an enhancing rim and a necrotic core; lower grades are smaller and homogeneous.

Planted mechanism "mri_leukoaraiosis": periventricular white-matter hyperintensities whose
strength grows with age (0 below 50 years, reaching ``LEUKOARAIOSIS`` at 80), as FLAIR shows in older
patients. They sit near the tumour's intensity, lowering tumour-to-background contrast for older
patients.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

LEUKOARAIOSIS = 0.35
TUMOUR_TYPES = {
    "Glioblastoma, IDH-wildtype": (4,),
    "Astrocytoma, IDH-mutant": (2, 3, 4),
    "Oligodendroglioma, IDH-mutant, 1p/19q-codeleted": (2, 3),
}
TYPE_SHARES = (0.75, 0.17, 0.08)


def simulate_mri_patients(n: int, rng: np.random.Generator) -> pd.DataFrame:
    types = np.array(list(TUMOUR_TYPES), dtype=object)[rng.choice(3, size=n, p=TYPE_SHARES)]
    grades = np.array([rng.choice(TUMOUR_TYPES[t]) for t in types])
    age = np.where(grades == 4, rng.normal(62, 11, n), rng.normal(41, 12, n)).clip(18, 90).round()
    return pd.DataFrame(
        {
            "number": np.arange(1, n + 1) * 2 + 2,
            "sex": np.where(rng.random(n) < 0.6, "M", "F"),
            "age": age.astype(int),
            "grade": grades,
            "tumor_type": types,
        }
    )


def leukoaraiosis_strength(age: np.ndarray) -> np.ndarray:
    return LEUKOARAIOSIS * np.clip((np.asarray(age, dtype=float) - 50) / 30, 0, 1)


def phantom(row, shape: tuple[int, int, int], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One (FLAIR volume float32, mask uint8) pair of shape ``shape`` (x, y, z as NIfTI stores it)."""
    axes = [np.linspace(-1, 1, n, dtype=np.float32) for n in shape]
    x, y, z = np.meshgrid(*axes, indexing="ij")
    brain_r = np.sqrt((x / 0.78) ** 2 + (y / 0.88) ** 2 + (z / 0.8) ** 2)
    head_r = np.sqrt((x / 0.9) ** 2 + (y / 0.98) ** 2 + (z / 0.92) ** 2)
    vol = np.where(head_r < 1, 0.7, 0.0) * (head_r > 0.9)
    brain = brain_r < 1
    vol = np.where(brain, 0.45 + 0.1 * (brain_r > 0.8), vol)
    vent_r = np.minimum(
        np.sqrt(((x - 0.12) / 0.08) ** 2 + (y / 0.3) ** 2 + (z / 0.2) ** 2),
        np.sqrt(((x + 0.12) / 0.08) ** 2 + (y / 0.3) ** 2 + (z / 0.2) ** 2),
    )
    vol = np.where(vent_r < 1, 0.1, vol)
    periventricular = (vent_r > 1) & (vent_r < 1.8) & brain
    vol = vol + leukoaraiosis_strength(row.age) * periventricular * (0.6 + 0.4 * rng.random(shape, dtype=np.float32))
    side = rng.choice([-1.0, 1.0])
    centre = np.array([side * rng.uniform(0.3, 0.45), rng.uniform(-0.4, 0.4), rng.uniform(-0.3, 0.3)])
    radius = rng.uniform(0.16, 0.24) if row.grade == 4 else rng.uniform(0.09, 0.16)
    tr = np.sqrt((x - centre[0]) ** 2 + (y - centre[1]) ** 2 + (z - centre[2]) ** 2) / radius
    mask = np.zeros(shape, dtype=np.uint8)
    if row.grade == 4:
        oedema, rim, core = (tr < 1.6) & brain, (tr < 1.0) & brain, (tr < 0.6) & brain
        vol = np.where(oedema, 0.85, vol)
        vol = np.where(rim, 0.75, vol)
        vol = np.where(core, 0.3, vol)
        mask[oedema], mask[rim], mask[core] = 2, 4, 1
    else:
        lesion = (tr < 1.0) & brain
        vol = np.where(lesion, 0.8, vol)
        mask[lesion] = 2
        if "Oligodendroglioma" in row.tumor_type:
            calc = lesion & (rng.random(shape) < 0.05)
            vol = np.where(calc, 0.2, vol)
    vol = vol + 0.02 * rng.standard_normal(shape, dtype=np.float32)
    return np.clip(vol, 0, None).astype(np.float32), mask


def write_ucsf_pdgm(root: Path, patients: pd.DataFrame, shape: tuple[int, int, int], rng: np.random.Generator) -> pd.DataFrame:
    """Write metadata CSV (3-digit IDs, as released) and per-patient NIfTI folders (4-digit IDs)."""
    root.mkdir(parents=True, exist_ok=True)
    affine = np.diag([1.0, 1.0, 1.0, 1.0])
    for row in patients.itertuples():
        pid = f"UCSF-PDGM-{row.number:04d}"
        folder = root / "UCSF-PDGM-v3" / f"{pid}_nifti"
        folder.mkdir(parents=True, exist_ok=True)
        vol, mask = phantom(row, shape, rng)
        nib.save(nib.Nifti1Image(vol, affine), folder / f"{pid}_FLAIR.nii.gz")
        nib.save(nib.Nifti1Image(mask, affine), folder / f"{pid}_tumor_segmentation.nii.gz")
    meta = pd.DataFrame(
        {
            "ID": [f"UCSF-PDGM-{n:03d}" for n in patients["number"]],
            "Sex": patients["sex"],
            "Age at MRI": patients["age"],
            "WHO CNS Grade": patients["grade"],
            "Final pathologic diagnosis (WHO 2021)": patients["tumor_type"],
            "MGMT status": np.where(rng.random(len(patients)) < 0.5, "positive", "negative"),
            "IDH": np.where(patients["tumor_type"].str.contains("wildtype"), "wildtype", "mutated"),
            "1-dead 0-alive": (rng.random(len(patients)) < 0.6).astype(int),
        }
    )
    meta.to_csv(root / "UCSF-PDGM-metadata_v2.csv", index=False)
    return meta

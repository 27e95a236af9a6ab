"""``radfair synth``: one simulated population written in every real release format.

Layout written below ``out``::

    chexpert/CheXpert-v1.0/{train,valid}.csv + JPEGs,  chexpert/CHEXPERT DEMO.xlsx
    chexpert-embeddings/train.npz, validation.npz   (as CXR Foundation ships them: train.csv and valid.csv rows)
    mimic-cxr-jpg/2.0.0/mimic-cxr-2.0.0-{metadata,chexpert,split}.csv.gz + files/pXX/...jpg
    mimiciv/2.2/hosp/{patients,admissions}.csv.gz
    mimic-cxr-embeddings/files/pXX/pSUBJ/sSTUDY/<dicom_id>.tfrecord
    ucsf-pdgm/UCSF-PDGM-metadata_v2.csv + UCSF-PDGM-v3/UCSF-PDGM-XXXX_nifti/*.nii.gz
    nih-cxr14/Data_Entry_2017_v2020.csv, train_val_list.txt, test_list.txt + images_001/images/*.png
    ground_truth.json, ground_truth_labels.csv.gz   (planted mechanisms; true findings per image)

The whole tree is built in a temporary sibling folder and renamed into place at the end.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from ... import __version__
from ...errors import BAD_OPTION, UNWRITABLE, RadfairInputError
from ...io import output_folder, temp_folder_beside, write_json
from ..schema import AGE_GROUPS, LABELS, RACES, age_group
from . import bias, cxr, mri, releases
from .population import FINDING_MODEL, simulate_findings, simulate_patients

CHEXPERT_SHARE = 0.545  # Table 1: 63,467 of 116,341 patients
#: Bumped whenever the same settings would write different data (2: faint breast shadow, explicit loss of
#: conspicuity of lower-zone findings); releases and study splits written by another version are not reused.
GENERATOR_VERSION = 2
BATCH = 256


def _studies(patients: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Expand patients into studies with age, severity, true findings and views."""
    idx = np.repeat(patients.index.to_numpy(), patients["n_studies"].to_numpy())
    studies = patients.loc[idx].reset_index(names="pidx")
    studies["k"] = studies.groupby("pidx").cumcount()
    studies["day"] = studies["k"] * rng.integers(30, 400, len(studies))
    studies["age"] = studies["age0"] + studies.groupby("pidx")["day"].cumsum() // 365
    sev = 0.8 * studies["severity"].to_numpy() + rng.normal(0, 0.6, len(studies))
    truth = simulate_findings(studies["age"].to_numpy(float), sev, rng)
    studies["age_group"] = age_group(studies["age"])
    studies["ap"] = rng.random(len(studies)) < 1 / (1 + np.exp(-(sev - 0.2)))
    studies["lateral"] = rng.random(len(studies)) < np.where(studies["ap"], 0.15, 0.8)
    return pd.concat([studies, truth.add_prefix("true_")], axis=1)


def _images(studies: pd.DataFrame) -> pd.DataFrame:
    """One row per image: every study has a frontal image (AP or PA), some also a lateral (LL)."""
    frontal = studies.assign(view_position=np.where(studies["ap"], "AP", "PA"), view_no=1)
    lateral = studies[studies["lateral"]].assign(view_position="LL", view_no=2)
    return pd.concat([frontal, lateral]).sort_values(["pidx", "k", "view_no"]).reset_index(drop=True)


def _render(images: pd.DataFrame, size: int, weights: dict, rng: np.random.Generator):
    """Pixels (uint8) and embeddings for all images, in batches."""
    truth = images[[f"true_{k}" for k in LABELS]].set_axis(list(LABELS), axis=1)
    pixels = np.empty((len(images), size, size), dtype=np.uint8)
    vectors = np.empty((len(images), 1376), dtype=np.float32)
    race_codes = {r: i for i, r in enumerate(RACES)}
    for start in range(0, len(images), BATCH):
        part = images.iloc[start : start + BATCH]
        t = truth.iloc[start : start + BATCH]
        params = cxr.draw_parameters(t, part["sex"].to_numpy(), rng)
        px = cxr.render(params, size, part["view_position"].to_numpy(), rng)
        demo = np.zeros((len(part), 9))
        demo[:, 0] = part["sex"].eq("Female").to_numpy()
        demo[:, 1] = part["age"].to_numpy() / 100
        for j, race in enumerate(part["race"]):
            if race in race_codes:
                demo[j, 2 + race_codes[race]] = 1
        pixels[start : start + len(part)] = px
        vectors[start : start + len(part)] = bias.embed(px, t, demo, params["breast"], weights, rng)
    return pixels, vectors


def _ids(rng: np.random.Generator, n: int, low: int, high: int) -> np.ndarray:
    return np.sort(rng.choice(np.arange(low, high), size=n, replace=False))


def _chexpert(n: int, size: int, out: Path, weights, rng) -> pd.DataFrame:
    patients = simulate_patients(n, "chexpert", rng)
    patients["patient"] = [f"patient{i + 1:05d}" for i in range(n)]
    patients["part"] = np.where(rng.random(n) < 0.03, "valid", "train")
    studies = _studies(patients, rng)
    recorded = bias.record_labels(studies[[f"true_{k}" for k in LABELS]].set_axis(list(LABELS), axis=1), studies, np.random.default_rng(rng.integers(2**63)))
    studies = pd.concat([studies, recorded.add_prefix("rec_")], axis=1)
    images = _images(studies)
    images["rel_path"] = (
        "CheXpert-v1.0/" + images["part"] + "/" + images["patient"] + "/study" + (images["k"] + 1).astype(str)
        + "/view" + images["view_no"].astype(str) + np.where(images["view_position"] == "LL", "_lateral.jpg", "_frontal.jpg")
    )
    images["image_id"] = "chexpert:" + images["rel_path"]
    pixels, vectors = _render(images, size, weights, rng)
    root = out / "chexpert"
    releases.write_images([root / p for p in images["rel_path"]], pixels)
    releases.write_chexpert(root, images, rng)
    train = (images["part"] == "train").to_numpy()
    releases.write_chexpert_embeddings(out / "chexpert-embeddings" / "train.npz", images[train], vectors[train])
    releases.write_chexpert_embeddings(out / "chexpert-embeddings" / "validation.npz", images[~train], vectors[~train])
    return images.assign(dataset="chexpert", insurance=None)


def _mimic(n: int, size: int, out: Path, weights, rng) -> pd.DataFrame:
    patients = simulate_patients(n, "mimic", rng)
    patients["subject_id"] = _ids(rng, n, 10_000_000, 20_000_000)
    patients["anchor_year"] = rng.integers(2110, 2190, n)
    patients["n_admissions"] = rng.integers(1, 4, n)
    split = rng.choice(["train", "validate", "test"], size=n, p=[0.97, 0.01, 0.02])
    patients["official_split"] = split
    studies = _studies(patients, rng)
    recorded = bias.record_labels(studies[[f"true_{k}" for k in LABELS]].set_axis(list(LABELS), axis=1), studies, np.random.default_rng(rng.integers(2**63)))
    studies = pd.concat([studies, recorded.add_prefix("rec_")], axis=1)
    studies["study_id"] = _ids(rng, len(studies), 50_000_000, 60_000_000)
    studies["study_date"] = pd.to_datetime(studies["anchor_year"].astype(str) + "-01-01") + pd.to_timedelta(
        studies.groupby("pidx")["day"].cumsum() + 20, unit="D"
    )
    # age at the study follows MIMIC's rule: anchor_age + (study year - anchor_year)
    studies["age"] = studies["age0"] + studies["study_date"].dt.year - studies["anchor_year"]
    studies["age_group"] = age_group(studies["age"])
    images = _images(studies)
    words = rng.integers(0, 2**32, size=(len(images), 5), dtype=np.uint64)
    images["dicom_id"] = ["-".join(f"{int(w):08x}" for w in row) for row in words]
    subj = images["subject_id"].astype(str)
    images["rel_path"] = "files/p" + subj.str[:2] + "/p" + subj + "/s" + images["study_id"].astype(str) + "/" + images["dicom_id"] + ".jpg"
    images["image_id"] = "mimic:" + images["dicom_id"]
    images["size"] = size
    pixels, vectors = _render(images, size, weights, rng)
    cxr_root = out / "mimic-cxr-jpg" / "2.0.0"
    releases.write_images([cxr_root / p for p in images["rel_path"]], pixels)
    releases.write_mimic(cxr_root, out / "mimiciv" / "2.2", images, patients, rng)
    releases.write_mimic_embeddings(out / "mimic-cxr-embeddings", images, vectors)
    return images.assign(dataset="mimic")


def _nih(n: int, size: int, out: Path, weights, rng) -> pd.DataFrame:
    """An NIH ChestX-ray14-format release of ``n`` patients (frontal PNGs only, as NIH ships them); its own random
    stream, so the other releases are unchanged by it."""
    patients = simulate_patients(n, "nih-cxr14", rng)
    patients["patient_no"] = np.arange(1, n + 1)
    patients["part"] = np.where(rng.random(n) < 0.2, "test", "train")  # NIH's test_list.txt: about a fifth of patients
    studies = _studies(patients, rng)
    recorded = bias.record_labels(studies[[f"true_{k}" for k in LABELS]].set_axis(list(LABELS), axis=1), studies, np.random.default_rng(rng.integers(2**63)))
    studies = pd.concat([studies, recorded.add_prefix("rec_")], axis=1)
    images = studies.assign(view_position=np.where(studies["ap"], "AP", "PA"))
    images["image_name"] = [f"{p:08d}_{k:03d}.png" for p, k in zip(images["patient_no"], images["k"], strict=True)]
    images["image_id"] = "nih-cxr14:" + images["image_name"]
    pixels, _ = _render(images, size, weights, rng)
    root = out / "nih-cxr14"
    releases.write_images([root / "images_001" / "images" / name for name in images["image_name"]], pixels)
    releases.write_nih_cxr14(root, images)
    return images.assign(dataset="nih-cxr14", insurance=None)


def _measured_under_labelling(images: pd.DataFrame) -> dict:
    """Share of true positives recorded as blank, per attribute group (frontal images, pathologies)."""
    frontal = images[images["view_position"] != "LL"]
    names = [k for k in LABELS if k != "no_finding"]
    true = frontal[[f"true_{k}" for k in names]].to_numpy() == 1
    blank = np.isnan(frontal[[f"rec_{k}" for k in names]].to_numpy(dtype=float))
    out = {}
    for attribute in ("sex", "race", "insurance", "age_group"):
        groups = {}
        for group, rows in frontal.groupby(attribute).indices.items():
            n_true = true[rows].sum()
            if n_true:
                groups[str(group)] = round(float((true[rows] & blank[rows]).sum() / n_true), 4)
        out[attribute] = groups
    return out


def generate(out: str | Path, patients: int = 2000, seed: int = 0, image_size: int = 64, mri_patients: int = 40,
             mri_shape: tuple[int, int, int] = (64, 64, 24), overwrite: bool = False, nih_patients: int = 100) -> dict:
    """Write every synthetic release below ``out``; return the ground-truth dict. ``nih_patients`` (0: none) are
    drawn from a fourth random stream, so CheXpert, MIMIC and UCSF-PDGM do not depend on it."""
    out = Path(out)
    if image_size < 32 or image_size % 8:
        raise RadfairInputError(BAD_OPTION.format(option="--image-size", value=image_size, expected="a multiple of 8, at least 32"))
    if patients < 20:
        raise RadfairInputError(BAD_OPTION.format(option="--patients", value=patients, expected="at least 20"))
    if nih_patients < 0:
        raise RadfairInputError(BAD_OPTION.format(option="--nih-patients", value=nih_patients, expected="0 or more"))
    if mri_patients < 0:
        raise RadfairInputError(BAD_OPTION.format(option="--mri-patients", value=mri_patients, expected="0 or more"))
    output_folder(out.parent, create=False)
    if out.exists() and not out.is_dir():
        raise RadfairInputError(UNWRITABLE.format(path=out, expected="a folder", reason="a file of that name exists"))
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise RadfairInputError(f"{out}: folder exists and is not empty; pass --overwrite to replace it")
    output_folder(out.parent)
    tmp = temp_folder_beside(out)  # also removes temporary folders left by killed runs
    try:
        streams = np.random.SeedSequence(seed).spawn(4)
        weights = bias.embedding_weights(seed, pooled_dim=bias.EMBEDDING["pool"] ** 2)
        n_chexpert = int(round(patients * CHEXPERT_SHARE))
        chex = _chexpert(n_chexpert, image_size, tmp, weights, np.random.default_rng(streams[0]))
        mimic = _mimic(patients - n_chexpert, image_size, tmp, weights, np.random.default_rng(streams[1]))
        mri_rng = np.random.default_rng(streams[2])
        mri_table = mri.simulate_mri_patients(mri_patients, mri_rng)
        if mri_patients:
            mri.write_ucsf_pdgm(tmp / "ucsf-pdgm", mri_table, mri_shape, mri_rng)
        nih = _nih(nih_patients, image_size, tmp, weights, np.random.default_rng(streams[3])) if nih_patients else None
        images = pd.concat([chex, mimic], ignore_index=True)
        truth_table = images[["image_id"] + [f"true_{k}" for k in LABELS]]
        truth_table.to_csv(tmp / "ground_truth_labels.csv.gz", index=False, compression=releases.GZIP)
        ground_truth = _ground_truth(seed, patients, image_size, mri_patients, images, mri_table)
        ground_truth["patients"]["nih-cxr14"] = nih_patients
        ground_truth["nih_cxr14_images"] = 0 if nih is None else int(len(nih))
        write_json(tmp / "ground_truth.json", ground_truth)
        if out.exists():
            trash = temp_folder_beside(out)
            out.rename(trash / out.name)
            tmp.rename(out)
            shutil.rmtree(trash)
        else:
            tmp.rename(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return ground_truth


def _ground_truth(seed, patients, image_size, mri_patients, images, mri_table) -> dict:
    frontal = images[images["view_position"] != "LL"]
    return {
        "radfair_version": __version__,
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "patients": {
            **{name: int(images.loc[images.dataset == name, "pidx"].nunique()) for name in ("chexpert", "mimic")},
            "ucsf-pdgm": mri_patients,
        },
        "images": int(len(images)),
        "image_size": image_size,
        "mechanisms": {
            "breast_soft_tissue": {
                "what": "for female patients, lower-zone findings lose conspicuity (attenuation x exp(-b)) under a faint "
                "breast shadow (attenuation shadow * b, a further exp(-shadow * b) of contrast through I = 1 - exp(-A)); "
                "expected: lower sensitivity (negative TPR disparity) for female patients on these findings",
                "group": {"sex": "Female"},
                "mean_b": cxr.BREAST_ATTENUATION,
                "shadow": cxr.BREAST_SHADOW,
                "expected_contrast_factor": float(cxr.lower_zone_contrast(cxr.BREAST_ATTENUATION)),
                "affected_findings": list(cxr.LOWER_ZONE),
            },
            "under_labelling": {
                "what": "a true positive is recorded as blank (-> negative) with a probability that depends on the group",
                "rates": bias.UNDER_LABELLING,
                "measured_blank_share_of_true_positives": _measured_under_labelling(images),
            },
            "age_prevalence": {
                "what": "log-odds of each finding change by `slope` per 20 years of age (centred at 60)",
                "slopes": {k: v[1] for k, v in FINDING_MODEL.items()},
                "true_prevalence_by_age_group": {
                    g: {k: round(float(frontal.loc[frontal.age_group == g, f"true_{k}"].mean()), 4) for k in LABELS}
                    for g in AGE_GROUPS if (frontal.age_group == g).any()
                },
            },
            "acquisition_noise": {"what": "portable AP images (sicker patients) are noisier", "noise_sd": cxr.NOISE_SD},
            "embedding_visibility": {
                "what": "synthetic foundation embeddings carry each finding with separation d' = finding_separation, "
                "scaled by its visibility (lower-zone findings x the image's contrast factor exp(-(1 + shadow) b) for "
                "female patients)",
                **bias.EMBEDDING,
            },
            "mri_leukoaraiosis": {
                "what": "periventricular FLAIR hyperintensity grows with age (0 below 50, max at 80), lowering tumour contrast",
                "max_strength": mri.LEUKOARAIOSIS,
                "patients_over_60": int((mri_table["age"] > 60).sum()),
            },
        },
        "true_prevalence_frontal": {k: round(float(frontal[f"true_{k}"].mean()), 4) for k in LABELS},
    }

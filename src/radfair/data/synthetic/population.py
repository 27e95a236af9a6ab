"""Simulated patients, studies and findings, shared by every synthetic release format.

Demographics follow Table 1 of the embeddings-vs-images paper (MIMIC and CXP columns). Findings
are drawn from a latent-severity logistic model with age effects and clinical co-occurrence
(edema -> effusion and cardiomegaly, pneumonia -> consolidation, parenchymal findings -> lung
opacity, cardiomegaly -> enlarged cardiomediastinum); "No Finding" is positive exactly when no
pathology (support devices aside) is present, as in the CheXpert labeller.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..schema import AGE_GROUPS, INSURANCES, LABELS, RACES

#: Table 1 shares (sex, age group, race, insurance) for each simulated release.
DEMOGRAPHICS = {
    "mimic": {
        "sex": {"Male": 0.541, "Female": 0.459},
        "age_group": dict(zip(AGE_GROUPS, (0.004, 0.106, 0.306, 0.422, 0.163), strict=True)),
        "race": dict(zip(RACES, (0.661, 0.161, 0.032, 0.055, 0.003, 0.047), strict=True)),
        "insurance": dict(zip(INSURANCES, (0.447, 0.082, 0.471), strict=True)),
    },
    "chexpert": {
        "sex": {"Male": 0.593, "Female": 0.407},
        "age_group": dict(zip(AGE_GROUPS, (0.008, 0.131, 0.310, 0.391, 0.161), strict=True)),
        "race": dict(zip(RACES, (0.633, 0.061, 0.118, 0.024, 0.019, 0.146), strict=True)),
    },
    # NIH ChestX-ray14 (Data_Entry_2017_v2020.csv, images): 56.5% male; no race or insurance in the release
    "nih-cxr14": {
        "sex": {"Male": 0.565, "Female": 0.435},
        "age_group": dict(zip(AGE_GROUPS, (0.056, 0.224, 0.426, 0.272, 0.022), strict=True)),
        "race": dict(zip(RACES, (0.633, 0.061, 0.118, 0.024, 0.019, 0.146), strict=True)),
    },
}
AGE_RANGES = {"0-20": (12, 20), "20-40": (20, 40), "40-60": (40, 60), "60-80": (60, 80), "80+": (80, 91)}
#: share of patients whose race is not recorded (-> missing in the cohort, never another group)
RACE_MISSING = 0.03

#: Finding -> (target prevalence among frontal studies, age slope per 20 years, severity loading).
FINDING_MODEL = {
    # causes first, so that every co-occurrence effect is drawn after its cause
    "edema": (0.18, 0.35, 0.7),
    "pneumonia": (0.03, 0.00, 0.5),
    "cardiomegaly": (0.12, 0.45, 0.3),
    "support_devices": (0.45, 0.15, 0.9),
    "lung_opacity": (0.30, 0.10, 0.5),
    "pleural_effusion": (0.25, 0.35, 0.7),
    "atelectasis": (0.15, 0.25, 0.4),
    "pneumothorax": (0.08, -0.25, 0.4),
    "consolidation": (0.06, 0.10, 0.5),
    "enlarged_cardiomediastinum": (0.05, 0.25, 0.3),
    "lung_lesion": (0.04, 0.30, 0.1),
    "fracture": (0.04, 0.20, 0.2),
    "pleural_other": (0.015, 0.10, 0.2),
}
#: cause -> (effect, added log-odds)
CO_OCCURRENCE = (
    ("edema", "pleural_effusion", 1.5),
    ("edema", "cardiomegaly", 1.0),
    ("pneumonia", "consolidation", 2.5),
    ("cardiomegaly", "enlarged_cardiomediastinum", 1.5),
)
PARENCHYMAL = ("edema", "consolidation", "pneumonia", "atelectasis", "lung_lesion")
PATHOLOGIES = [n for n in LABELS if n not in ("no_finding", "support_devices")]


def _draw(rng: np.random.Generator, shares: dict, n: int) -> np.ndarray:
    keys = list(shares)
    p = np.array([shares[k] for k in keys], dtype=float)
    return np.array(keys, dtype=object)[rng.choice(len(keys), size=n, p=p / p.sum())]


def simulate_patients(n: int, dataset: str, rng: np.random.Generator) -> pd.DataFrame:
    """One row per patient: sex, age at first study, race (None if unrecorded), insurance (MIMIC)."""
    shares = DEMOGRAPHICS[dataset]
    groups = _draw(rng, shares["age_group"], n)
    lo = np.array([AGE_RANGES[g][0] for g in groups])
    hi = np.array([AGE_RANGES[g][1] for g in groups])
    race = _draw(rng, shares["race"], n)
    race[rng.random(n) < RACE_MISSING] = None
    out = pd.DataFrame(
        {
            "sex": _draw(rng, shares["sex"], n),
            "age0": np.floor(lo + rng.random(n) * (hi - lo)).astype(int),
            "race": race,
            "severity": rng.normal(size=n),
            "n_studies": np.minimum(rng.geometric(0.45, size=n), 6),
        }
    )
    if "insurance" in shares:
        out["insurance"] = _draw(rng, shares["insurance"], n)
        # Medicare is mostly 65+: move most young Medicare patients to Other, keeping the margins roughly
        young = (out["age0"] < 60) & (out["insurance"] == "Medicare") & (rng.random(n) < 0.6)
        out.loc[young, "insurance"] = "Other"
    return out


def _logit(p: float) -> float:
    return float(np.log(p / (1 - p)))


def simulate_findings(age: np.ndarray, severity: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
    """True findings (0/1) for each study given age (years) and latent severity."""
    n = len(age)
    z_age = (age - 60.0) / 20.0
    logits = {}
    for name, (prevalence, slope, loading) in FINDING_MODEL.items():
        logits[name] = _logit(prevalence) - 0.35 * loading + slope * z_age + loading * severity
    truth: dict[str, np.ndarray] = {}
    for name in FINDING_MODEL:
        logit = logits[name]
        for cause, effect, strength in CO_OCCURRENCE:
            if effect == name:
                logit = logit + strength * truth[cause]
        truth[name] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    parenchymal = np.max([truth[k] for k in PARENCHYMAL], axis=0)
    truth["lung_opacity"] = np.maximum(truth["lung_opacity"], parenchymal * (rng.random(n) < 0.85))
    truth["no_finding"] = (np.max([truth[k] for k in PATHOLOGIES], axis=0) == 0).astype(int)
    return pd.DataFrame({name: truth[name] for name in LABELS})

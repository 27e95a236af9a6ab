"""Simulated *scored* tables (model outputs), for testing the fairness engine and benchmarking it.

Each patient has demographics (MIMIC shares of Table 1) and a latent frailty ``u`` shared by all of
their images, so images within a patient are correlated (what makes the patient-level bootstrap
matter). For label l and image i: ``y ~ Bernoulli(prevalence)``, ``score = sigmoid(-1.5 +
separation * y + effect_g * y + rho * u + noise)``, where ``effect_g`` lowers the score of positives
in a chosen group (planted under-diagnosis).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..schema import LABELS, age_group
from .population import DEMOGRAPHICS, _draw


def simulate_scored(n_patients: int = 2000, images_per_patient: float = 2.0, labels: list[str] | None = None,
                    seed: int = 0, prevalence: float = 0.15, separation: float = 2.5, rho: float = 1.0,
                    effects: dict[tuple[str, str], float] | None = None, fractions=(0.0, 0.1, 0.9)) -> pd.DataFrame:
    """A scored table with ``split`` (patient-level), attributes, ``y_*`` and ``p_*``.

    ``effects`` maps (attribute, group) to a log-odds shift applied to positives' scores,
    e.g. ``{("sex", "Female"): -0.8}``.
    """
    rng = np.random.default_rng(seed)
    labels = list(LABELS) if labels is None else labels
    shares = DEMOGRAPHICS["mimic"]
    sex = _draw(rng, shares["sex"], n_patients)
    age = rng.uniform(18, 95, n_patients)
    race = _draw(rng, shares["race"], n_patients)
    insurance = _draw(rng, shares["insurance"], n_patients)
    u = rng.normal(size=n_patients)
    split = rng.choice(["train", "val", "test"], size=n_patients, p=np.array(fractions) / sum(fractions))
    n_images = 1 + rng.poisson(images_per_patient - 1, n_patients)
    pid = np.repeat(np.arange(n_patients), n_images)
    df = pd.DataFrame({
        "image_id": [f"img{i}" for i in range(len(pid))],
        "patient_id": [f"pat{p}" for p in pid],
        "split": split[pid],
        "sex": sex[pid],
        "age": age[pid].round(),
        "race": race[pid],
        "insurance": insurance[pid],
    })
    df["age_group"] = age_group(df["age"])
    shift = np.zeros(len(df))
    for (attribute, group), value in (effects or {}).items():
        shift += np.where(df[attribute].to_numpy() == group, value, 0.0)
    n = len(df)
    columns = {}
    for label in labels:
        y = (rng.random(n) < prevalence).astype(float)
        logit = -1.5 + separation * y + shift * y + rho * u[pid] + rng.normal(size=n)
        columns[f"y_{label}"] = y
        columns[f"p_{label}"] = 1 / (1 + np.exp(-logit))
    return pd.concat([df, pd.DataFrame(columns)], axis=1)

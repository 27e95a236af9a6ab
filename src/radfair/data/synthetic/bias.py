"""Planted bias mechanisms: label recording with group-dependent under-labelling, and embeddings.

Both are documented with their strengths in ``ground_truth.json`` so that tests and users can check
that an audit recovers what was planted.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..schema import LABELS
from .cxr import LOWER_ZONE, lower_zone_contrast

#: P(a true positive finding is recorded as blank) = base + sum of the additive terms that apply.
#: Mirrors the under-diagnosis pattern of Seyyed-Kalantari et al. (2021): worse for Black, Hispanic,
#: Medicaid, female and young patients.
UNDER_LABELLING = {
    "base": 0.05,
    "race": {"Black": 0.15, "Hispanic": 0.10},
    "insurance": {"Medicaid": 0.10},
    "sex": {"Female": 0.05},
    "age_group": {"0-20": 0.05, "20-40": 0.05},
}
UNCERTAIN_AMONG_POSITIVES = 0.12
EXPLICIT_NEGATIVE = 0.12
UNCERTAIN_AMONG_NEGATIVES = 0.02

#: Embedding model: e = 0.6 tanh(W_img pooled) + sum_l d' sigma u_l visibility_l y_l + 0.25 W_demo d + N(0, sigma^2)
EMBEDDING = {"noise_sd": 0.6, "finding_separation": 1.6, "image_weight": 0.6, "demographic_weight": 0.25, "pool": 8}


def under_labelling_rate(studies: pd.DataFrame) -> np.ndarray:
    rate = np.full(len(studies), UNDER_LABELLING["base"])
    for attribute, extra in UNDER_LABELLING.items():
        if attribute == "base" or attribute not in studies.columns:
            continue
        rate = rate + studies[attribute].map(extra).fillna(0.0).to_numpy(dtype=float)
    return rate


def record_labels(truth: pd.DataFrame, studies: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """True findings -> recorded raw label cells (1, 0, -1, NaN=blank) as a labeller would write them."""
    n = len(truth)
    rate = under_labelling_rate(studies)
    recorded = {}
    for name in LABELS:
        if name == "no_finding":
            continue
        y = truth[name].to_numpy()
        missed = (y == 1) & (rng.random(n) < rate)
        u = rng.random(n)
        cell = np.full(n, np.nan)
        positive = (y == 1) & ~missed
        cell[positive] = np.where(u[positive] < UNCERTAIN_AMONG_POSITIVES, -1.0, 1.0)
        negative = ~positive
        cell[negative & (u < EXPLICIT_NEGATIVE)] = 0.0
        cell[negative & (u > 1 - UNCERTAIN_AMONG_NEGATIVES)] = -1.0
        recorded[name] = cell
    pathologies = [k for k in recorded if k != "support_devices"]
    any_mentioned = np.max([np.nan_to_num(recorded[k], nan=0.0) != 0 for k in pathologies], axis=0)
    recorded["no_finding"] = np.where(any_mentioned, np.nan, 1.0)
    return pd.DataFrame({name: recorded[name] for name in LABELS}, index=truth.index)


def embedding_weights(seed: int, pooled_dim: int, dim: int = 1376) -> dict[str, np.ndarray]:
    """The fixed random projections of the synthetic foundation model (one per generator seed)."""
    rng = np.random.default_rng([seed, 1376])
    sigma = EMBEDDING["noise_sd"]
    find = rng.normal(size=(len(LABELS), dim))
    find *= EMBEDDING["finding_separation"] * sigma / np.linalg.norm(find, axis=1, keepdims=True)
    return {
        "image": rng.normal(size=(pooled_dim, dim)) / np.sqrt(pooled_dim),
        "finding": find,
        "demographic": rng.normal(size=(9, dim)) / 3.0,
    }


def visibility(truth: pd.DataFrame, breast: np.ndarray) -> np.ndarray:
    """Per-image, per-finding visibility: lower-zone findings keep the contrast they have in the image
    (:func:`radfair.data.synthetic.cxr.lower_zone_contrast`)."""
    vis = np.ones((len(truth), len(LABELS)))
    factor = lower_zone_contrast(breast)
    for j, name in enumerate(LABELS):
        if name in LOWER_ZONE:
            vis[:, j] = factor
    return vis


def embed(pixels: np.ndarray, truth: pd.DataFrame, demo: np.ndarray, breast: np.ndarray, weights: dict, rng: np.random.Generator) -> np.ndarray:
    """Synthetic CXR-Foundation embeddings (B, 1376) from images, visible findings and demographics."""
    b, s, _ = pixels.shape
    k = EMBEDDING["pool"]
    pooled = pixels.reshape(b, k, s // k, k, s // k).mean(axis=(2, 4)).reshape(b, k * k) / 255.0 - 0.5
    e = EMBEDDING["image_weight"] * np.tanh(4.0 * pooled @ weights["image"])
    e += (truth[list(LABELS)].to_numpy() * visibility(truth, breast)) @ weights["finding"]
    e += EMBEDDING["demographic_weight"] * demo @ weights["demographic"]
    e += EMBEDDING["noise_sd"] * rng.standard_normal(e.shape)
    return e.astype(np.float32)

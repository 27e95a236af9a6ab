"""Procedural chest radiographs in which every finding has a visible cause.

The renderer builds an attenuation map A (body, lungs, mediastinum, heart, spine, ribs, findings,
and for female patients breast soft tissue) and displays ``I = 1 - exp(-A)`` (bright = attenuating),
then adds acquisition noise. The planted sex bias (mechanism "breast_soft_tissue" in
``ground_truth.json``): for a female patient with breast parameter ``b``, the lower-zone findings lose
conspicuity -- their attenuation is scaled by ``exp(-b)`` (superimposed tissue hides their edges) -- and
the breast shadow adds ``BREAST_SHADOW * b`` of attenuation, which the exponential display turns into
a further contrast factor ``exp(-BREAST_SHADOW * b)``. Lower-zone findings of female patients are thus
shown with ``exp(-(1 + BREAST_SHADOW) b)`` of their contrast. The shadow is kept faint: a bright shadow
over the lung bases looks like effusion to a small classifier and raises every female score, which
would hide the planted loss of sensitivity behind a brightness confound (measured: female effusion
negatives scored 0.41 vs 0.33 for male ones with a shadow of 0.5).

Everything is vectorised over a batch: parameters are arrays of shape (B,), images (B, S, S).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: Findings drawn in the lower lung zone, where breast tissue overlies the lungs.
LOWER_ZONE = ("pleural_effusion", "consolidation", "atelectasis", "pneumonia")
#: Mean breast parameter b of female patients: lower-zone findings' attenuation is scaled by exp(-b).
BREAST_ATTENUATION = 0.5
#: The breast shadow's attenuation per unit of b (faint; see the module docstring).
BREAST_SHADOW = 0.1


def lower_zone_contrast(breast):
    """Displayed contrast of a lower-zone finding under breast parameter ``breast``, relative to none."""
    return np.exp(-(1.0 + BREAST_SHADOW) * np.asarray(breast, dtype=float))
NOISE_SD = {"PA": 0.012, "AP": 0.03, "LL": 0.015}


def _ellipse(x, y, cx, cy, rx, ry, soft=0.04):
    """Soft-edged ellipse indicator, broadcast over batch parameters of shape (B, 1, 1)."""
    r = np.sqrt(((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2)
    return 0.5 * (1.0 - np.tanh((r - 1.0) / (2 * soft)))  # logistic, overflow-free


def _blob(x, y, cx, cy, sigma):
    return np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * sigma**2))


def _col(values) -> np.ndarray:
    return np.asarray(values, dtype=np.float32)[:, None, None]


def draw_parameters(findings: pd.DataFrame, sex: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Per-image geometry and finding placements (all arrays of shape (B,))."""
    b = len(findings)
    f = {k: findings[k].to_numpy().astype(np.float32) for k in findings.columns}
    side = np.where(rng.random(b) < 0.5, -1.0, 1.0)
    female = (np.asarray(sex) == "Female").astype(np.float32)
    return {
        "heart_scale": 1.0 + 0.38 * f["cardiomegaly"] + rng.normal(0, 0.05, b),
        "med_scale": 1.0 + 0.7 * f["enlarged_cardiomediastinum"] + rng.normal(0, 0.05, b),
        "lung_ry": 0.55 + rng.normal(0, 0.03, b),
        "effusion_level": 0.30 + 0.12 * rng.random(b),
        "effusion_side": side,
        "effusion_bilateral": (rng.random(b) < 0.4).astype(np.float32),
        "blob_x": side * (0.28 + 0.15 * rng.random(b)),
        "blob_y": 0.15 + 0.2 * rng.random(b),
        "nodule_x": -side * (0.25 + 0.2 * rng.random(b)),
        "nodule_y": -0.2 + 0.5 * rng.random(b),
        "ptx_side": -side,
        "breast": female * BREAST_ATTENUATION * rng.uniform(0.7, 1.3, b),
        "rib_phase": rng.uniform(0, 2 * np.pi, b),
        **{f"has_{k}": v for k, v in f.items()},
    }


def attenuation(p: dict[str, np.ndarray], size: int, lateral: np.ndarray | None = None) -> np.ndarray:
    """The attenuation map (B, size, size) for parameters ``p`` (see :func:`draw_parameters`)."""
    axis = np.linspace(-1, 1, size, dtype=np.float32)
    y, x = np.meshgrid(axis, axis, indexing="ij")
    y, x = y[None], x[None]
    c = {k: _col(v) for k, v in p.items()}
    body = _ellipse(x, y, 0, 0.05, 0.88, 0.97)
    lungs = _ellipse(x, y, -0.38, -0.08, 0.27, c["lung_ry"]) + _ellipse(x, y, 0.38, -0.08, 0.27, c["lung_ry"])
    if lateral is not None:
        single = _ellipse(x, y, 0.0, -0.08, 0.55, c["lung_ry"])
        lat = _col(lateral)
        lungs = lat * single + (1 - lat) * lungs
    a = 0.9 * body - 0.65 * lungs
    a += 0.45 * _ellipse(x, y, 0.0, -0.2, 0.11 * c["med_scale"], 0.45, soft=0.08)
    a += 0.55 * _ellipse(x, y, 0.1, 0.3, 0.24 * c["heart_scale"], 0.19 * np.sqrt(c["heart_scale"]), soft=0.06)
    a += 0.30 * _ellipse(x, y, 0.0, 0.0, 0.05, 0.95, soft=0.1)
    ribs = (np.cos(2 * np.pi * (3.5 * y + 0.8 * x**2) + c["rib_phase"]) > 0.6).astype(np.float32)
    fracture_gap = 1 - c["has_fracture"] * _blob(x, y, c["nodule_x"], c["nodule_y"] - 0.3, 0.04)
    a += 0.10 * ribs * lungs * fracture_gap
    a += 0.35 * c["has_fracture"] * _blob(x, y, c["nodule_x"], c["nodule_y"] - 0.22, 0.025)
    lower = np.clip((y - c["effusion_level"]) / 0.05, 0, 1)
    near_side = _ellipse(x, y, 0.38 * c["effusion_side"], 0.2, 0.32, 0.6)
    far_side = _ellipse(x, y, -0.38 * c["effusion_side"], 0.2, 0.32, 0.6) * c["effusion_bilateral"]
    hidden = np.exp(-c["breast"])  # lower-zone findings lose conspicuity under breast tissue (LOWER_ZONE)
    a += 0.6 * hidden * c["has_pleural_effusion"] * lower * (near_side + far_side)
    a += 0.5 * hidden * c["has_consolidation"] * _blob(x, y, c["blob_x"], c["blob_y"], 0.11)
    patchy = _blob(x, y, c["blob_x"] + 0.08, c["blob_y"] - 0.05, 0.06) + _blob(x, y, c["blob_x"] - 0.07, c["blob_y"] + 0.04, 0.05)
    a += 0.45 * hidden * c["has_pneumonia"] * patchy
    a += 0.25 * c["has_lung_opacity"] * _blob(x, y, -c["blob_x"], 0.0, 0.25) * lungs
    a += 0.35 * c["has_edema"] * (_blob(x, y, -0.2, -0.02, 0.17) + _blob(x, y, 0.2, -0.02, 0.17))
    a += 0.4 * hidden * c["has_atelectasis"] * _ellipse(x, y, c["blob_x"], 0.33, 0.18, 0.035, soft=0.15)
    a += 0.6 * c["has_lung_lesion"] * _blob(x, y, c["nodule_x"], c["nodule_y"], 0.045)
    apex = _ellipse(x, y, 0.45 * c["ptx_side"], -0.45, 0.2, 0.22, soft=0.1)
    a -= 0.18 * c["has_pneumothorax"] * apex * lungs
    a += 0.3 * c["has_pleural_other"] * _ellipse(x, y, 0.62 * c["effusion_side"], -0.1, 0.04, 0.35, soft=0.15)
    tube = _ellipse(x, y, 0.02, -0.55, 0.015, 0.5, soft=0.2)
    pacer = _ellipse(x, y, -0.55, -0.62, 0.08, 0.05, soft=0.1)
    a += 1.5 * c["has_support_devices"] * (tube + pacer)
    breast = _ellipse(x, y, -0.4, 0.42, 0.36, 0.26, soft=0.15) + _ellipse(x, y, 0.4, 0.42, 0.36, 0.26, soft=0.15)
    a += BREAST_SHADOW * c["breast"] * breast
    return np.clip(a, 0, None)


def display(att: np.ndarray) -> np.ndarray:
    """Attenuation -> radiograph intensity in [0, 1) (bright = attenuating)."""
    return 1.0 - np.exp(-att)


def render(p: dict[str, np.ndarray], size: int, views: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Noisy radiographs (B, size, size) as uint8. ``views`` holds PA/AP/LL per image."""
    views = np.asarray(views)
    img = display(attenuation(p, size, lateral=(views == "LL").astype(np.float32)))
    sd = np.array([NOISE_SD.get(v, 0.015) for v in views], dtype=np.float32)[:, None, None]
    img = img + sd * rng.standard_normal(img.shape, dtype=np.float32)
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)

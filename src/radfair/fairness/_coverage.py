"""Coverage simulation of the max - min intervals on planted data with known true gaps.

Each patient has ``1 + Poisson(1.5)`` images, each positive for a label with probability 1/2.
Images of one patient are correlated: the patient draws ``u ~ Beta(kappa mu_g, kappa (1 - mu_g))``
and each of its positive images is detected with probability ``u`` (false positives likewise with
``nu_g``), so the true image-level TPR of group g is exactly ``mu_g`` and the true FPR ``nu_g``.
The scored table goes through ``run_audit`` unchanged (threshold 0.5 on 0/1 scores, patient-level
bootstrap), and we count how often each reported interval contains the true value.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass
class Setting:
    name: str
    positives: tuple[int, ...]  # expected positive images per group and label
    tpr: tuple[tuple[float, ...], ...]  # true TPR per label, per group
    fpr: tuple[float, ...]  # true FPR per group (every label)
    kappa: float = 4.0  # Beta concentration: smaller = more correlated images within a patient


SETTINGS = (
    Setting("sex: 2 groups x 2,000 positives", (2000, 2000), ((0.80, 0.75), (0.60, 0.60)), (0.10, 0.12)),
    Setting("race: 6 groups, 2,000 .. 20 positives", (2000, 800, 400, 200, 40, 20),
            ((0.80, 0.78, 0.75, 0.72, 0.70, 0.69), (0.60, 0.62, 0.58, 0.60, 0.55, 0.65)), (0.10, 0.12, 0.11, 0.09, 0.10, 0.13)),
    Setting("no true gap: 3 groups, 500 / 100 / 20 positives", (500, 100, 20), ((0.7, 0.7, 0.7), (0.5, 0.5, 0.5)), (0.1, 0.1, 0.1)),
    Setting("small: 4 groups x 20 positives, strong correlation", (20, 20, 20, 20),
            ((0.9, 0.8, 0.7, 0.85), (0.6, 0.6, 0.5, 0.7)), (0.1, 0.2, 0.15, 0.1), kappa=1.0),
)


def true_values(setting: Setting) -> dict[str, float | np.ndarray]:
    """True eop, gap, eodd_worst, eodd_mean per label and the true average gap."""
    tpr = np.array(setting.tpr, dtype=float).T  # (G, L)
    fpr = np.repeat(np.array(setting.fpr, dtype=float)[:, None], tpr.shape[1], axis=1)
    d_tpr, d_fpr = np.ptp(tpr, axis=0), np.ptp(fpr, axis=0)
    factor = 2.0 if tpr.shape[0] == 2 else 1.0
    return {"eop": d_tpr, "gap": factor * d_tpr, "eodd_worst": np.maximum(d_tpr, d_fpr),
            "eodd_mean": (d_tpr + d_fpr) / 2, "average_gap": float(np.mean(factor * d_tpr))}


def planted_table(setting: Setting, rng: np.random.Generator) -> pd.DataFrame:
    """One scored table (test split only plus one val row per label for the threshold check)."""
    frames = []
    n_labels = len(setting.tpr)
    tpr = np.array(setting.tpr, dtype=float).T
    for g, positives in enumerate(setting.positives):
        n_pat = int(np.ceil(positives / 1.25))
        n_img = 1 + rng.poisson(1.5, n_pat)
        patient = np.repeat(np.arange(n_pat), n_img)
        data = {"patient_id": [f"g{g}p{i}" for i in patient], "split": "test", "grp": f"G{g}"}
        for j in range(n_labels):
            k = setting.kappa
            u = rng.beta(k * tpr[g, j], k * (1 - tpr[g, j]), n_pat)[patient]
            v = rng.beta(k * setting.fpr[g], k * (1 - setting.fpr[g]), n_pat)[patient]
            y = rng.random(len(patient)) < 0.5
            hit = rng.random(len(patient)) < np.where(y, u, v)
            data[f"y_l{j}"] = y.astype(float)
            data[f"p_l{j}"] = hit.astype(float)
        frames.append(pd.DataFrame(data))
    return pd.concat(frames, ignore_index=True)


def simulate_coverage(settings=SETTINGS, n_sims: int = 200, bootstrap: int = 400, level: float = 0.95,
                      seed: int = 0) -> pd.DataFrame:
    """Coverage of the audit's intervals for gap, eop, eodd_worst, eodd_mean and average_gap.

    Returns one row per (setting, statistic): coverage, mean width, the number of plug-in and
    bias-corrected estimates outside their interval, and mean bias of both estimates.
    """
    from ._audit import AuditConfig, run_audit

    rng = np.random.default_rng(seed)
    rows = []
    for setting in settings:
        truth = true_values(setting)
        hits: dict[str, list] = {}
        for _ in range(n_sims):
            df = planted_table(setting, rng)
            config = AuditConfig(attributes=["grp"], threshold="0.5", bootstrap=bootstrap, seed=int(rng.integers(2**31)),
                                 level=level, auc=False, summary_exclude=[], workers=1)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                tables = run_audit(df, config)
            eo, gaps, summary = tables["equalized_odds"], tables["gaps"], tables["summary"].iloc[0]
            records = [("gap", gaps["gap"], gaps["gap_bc"], gaps["ci_low"], gaps["ci_high"], truth["gap"])]
            for name in ("eop", "eodd_worst", "eodd_mean"):
                records.append((name, eo[name], eo[f"{name}_bc"], eo[f"{name}_ci_low"], eo[f"{name}_ci_high"], truth[name]))
            records.append(("average_gap", [summary["average_gap"]], [summary["average_gap_bc"]], [summary["ci_low"]],
                            [summary["ci_high"]], [truth["average_gap"]]))
            for name, est, bc, low, high, true in records:
                est, bc, low, high, true = (np.asarray(x, dtype=float) for x in (est, bc, low, high, true))
                tol = 1e-12
                hits.setdefault(name, []).append(np.stack([
                    (low - tol <= true) & (true <= high + tol), high - low,
                    (est < low - tol) | (est > high + tol), (bc < low - tol) | (bc > high + tol), est - true, bc - true]))
        for name, values in hits.items():
            v = np.concatenate(values, axis=1)
            rows.append({"setting": setting.name, "statistic": name, "cases": v.shape[1], "coverage": float(v[0].mean()),
                         "mean_width": float(v[1].mean()), "plug_in_outside": int(v[2].sum()), "bc_outside": int(v[3].sum()),
                         "plug_in_bias": float(v[4].mean()), "bc_bias": float(v[5].mean())})
    return pd.DataFrame(rows)

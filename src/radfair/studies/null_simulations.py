"""Null and planted-effect simulations of both studies' tests, run through the studies' own analysis code.

* :func:`study2_null`: Study 2's paired shift analysis (:func:`.reconstruction.analysis.paired_shift` and
  :func:`.reconstruction.analysis.adjust_families`) on clean and "reconstructed" scores that differ only by
  noise of the same size (clean = sigmoid(l + e1), reconstructed = sigmoid(l + e2), e1, e2 iid N(0, s^2)), so
  every fairness metric has the same expectation on both: any confirmatory finding is a false positive. With
  ``planted`` > 0, the reconstructed scores of Female positives of the first reconstructor are lowered by a
  logit shift that raises the true worst-case EODD by about ``planted``: the share of those rows found after
  Holm is the power.
* :func:`study1_null`: Study 1's evaluation (:func:`.emb_vs_img.evaluate.evaluate_dataset`) with both arms drawn
  from the same model distribution: per run s and group g the model detects a positive image when the image's
  difficulty u (shared by every run: test sampling) is below mu_g + tau_(s,g) (tau ~ N(0, seed_sd^2): training
  randomness); negatives are false positives likewise with rate 0.1. The true disparity is mu_F - mu_M, so
  the coverage of the combined seed + sampling interval is measured, and the rate at which the paired test
  declares one arm fairer (average gap, p < 0.05) is the false-positive rate.

Used by the slow tests (tests/studies/test_null_simulations.py) and ``benchmarks/sim_null.py`` (docs/intervals.md).
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import expit

ATTRIBUTES = ("sex", "age_binary", "race")


def _population(rng: np.random.Generator, n_patients: int, labels: list[str], baseline: float = 0.0) -> tuple[pd.DataFrame, np.ndarray]:
    n = n_patients
    table = pd.DataFrame({
        "image_id": [f"i{k}" for k in range(n)], "patient_id": [f"p{k}" for k in range(n)],
        "split": np.where(rng.random(n) < 1 / 3, "val", "test"),
        "sex": rng.choice(["Male", "Female"], n), "age_binary": rng.choice(["<=62", ">62"], n),
        "race": rng.choice(["White", "Black", "Asian"], n, p=[0.6, 0.25, 0.15]),
    })
    latent = np.empty((n, len(labels)))
    for j, label in enumerate(labels):
        y = (rng.random(n) < 0.3).astype(float)
        table[f"y_{label}"] = y
        latent[:, j] = 1.5 * y - 0.75 + rng.standard_normal(n) - _female_shift(baseline) * y * (table["sex"] == "Female").to_numpy()
    return table, latent


def _female_shift(planted: float) -> float:
    """Logit shift of Female positives that lowers their TPR at the balanced threshold by about ``planted``."""
    # at the balanced threshold TPR ~ 0.77 for this population: dTPR ~ phi-slope * shift; 0.77 * 0.23 ~ 0.18 per logit
    return planted / 0.18


def study2_null(n_studies: int = 200, *, n_patients: int = 1500, labels: tuple[str, ...] = ("a", "b", "c", "d"),
                reconstructors: int = 3, noise_sd: float = 0.7, bootstrap: int = 200, planted: float = 0.0, seed: int = 0,
                p_value: str = "bootstrap-normal", baseline: float = 0.0) -> dict:
    """Family-wise error (``planted = 0``) or power of Study 2's confirmatory family over ``n_studies`` studies.

    ``baseline``: a true sex disparity present in clean and reconstructed scores alike (Female positives' TPR lower
    by about ``baseline``), so the sex rows are tested away from the EODD = 0 boundary."""
    from .reconstruction.analysis import adjust_families, clean_thresholds, paired_shift
    from .reconstruction.config import ConfirmatoryFamily

    family = ConfirmatoryFamily(metrics=["eodd_worst"], levels="all")
    rng = np.random.default_rng(seed)
    any_holm = any_bh = 0
    planted_found = planted_total = 0
    sizes, unadjusted = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for study in range(n_studies):
            base, latent = _population(rng, n_patients, list(labels), baseline)
            clean = base.copy()
            for j, label in enumerate(labels):
                clean[f"p_{label}"] = expit(latent[:, j] + noise_sd * rng.standard_normal(len(base)))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                thresholds, kept, _ = clean_thresholds(clean, list(labels), "balanced", Path(tmp) / f"t{study}.csv")
                rows = []
                for k in range(reconstructors):
                    recon = base.copy()
                    for j, label in enumerate(labels):
                        logit = latent[:, j] + noise_sd * rng.standard_normal(len(base))
                        if planted and k == 0:
                            logit = logit - _female_shift(planted) * ((base["sex"] == "Female") & (base[f"y_{label}"] == 1)).to_numpy()
                        recon[f"p_{label}"] = expit(logit)
                    comparison, _ = paired_shift(clean, recon, kept, list(ATTRIBUTES), thresholds, bootstrap, study, 0.95, p_value)
                    rows.append(comparison.assign(dataset="sim", reconstructor=f"r{k}", level="mid", mitigation="standard"))
            shift, record = adjust_families(pd.concat(rows, ignore_index=True), family, {"sim": "mid"}, p_value, bootstrap)
            conf = shift[shift["family"] == "confirmatory"]
            sizes.append(record["size"])
            unadjusted.append(int((conf["p_value"] < 0.05).sum()))
            if planted:
                target = conf[(conf["reconstructor"] == "r0") & (conf["attribute"] == "sex")]
                planted_found += int((target["p_holm"] < 0.05).sum())
                planted_total += len(target)
                null_rows = conf.drop(target.index)
                any_holm += bool((null_rows["p_holm"] < 0.05).any())
            else:
                any_holm += bool((conf["p_holm"] < 0.05).any())
                any_bh += bool((conf["p_bh"] < 0.05).any())
    out = {"studies": n_studies, "family_size": int(np.median(sizes)), "p_value_method": p_value, "bootstrap": bootstrap,
           "n_patients": n_patients, "baseline_sex_disparity": baseline,
           "mean_unadjusted_p_below_0.05": float(np.mean(unadjusted))}
    if planted:
        out |= {"planted_eodd_shift": planted, "power_holm": planted_found / max(planted_total, 1),
                "fwer_on_null_rows": any_holm / n_studies}
    else:
        out |= {"fwer_holm": any_holm / n_studies, "any_bh_rejection": any_bh / n_studies}
    return out


def _study1_runs(rng: np.random.Generator, n_patients: int, labels: list[str], mu: dict[str, float], seed_sd: float,
                 arms: tuple[str, ...], seeds: int, planted: float = 0.0) -> tuple[dict, float]:
    n = n_patients
    sex = rng.choice(["Male", "Female"], n)
    table = pd.DataFrame({"image_id": [f"i{k}" for k in range(n)], "patient_id": [f"p{k}" for k in range(n)],
                          "split": np.where(rng.random(n) < 0.2, "val", "test"), "sex": sex})
    difficulty = {}
    for label in labels:
        table[f"y_{label}"] = (rng.random(n) < 0.3).astype(float)
        difficulty[label] = rng.random(n)  # shared by every run: which images are hard
    runs = {}
    for arm in arms:
        for s in range(seeds):
            run = table.copy()
            for label in labels:
                tau = {g: seed_sd * rng.standard_normal() for g in mu}
                female = mu["Female"] - (planted if arm == arms[-1] else 0.0)  # the last arm: Female TPR lower by planted
                rate = np.where(sex == "Female", female + tau["Female"], mu["Male"] + tau["Male"])
                positive = run[f"y_{label}"].to_numpy() == 1
                detected = np.where(positive, difficulty[label] < rate, rng.random(n) < 0.1)
                run[f"p_{label}"] = detected.astype(float)
            runs[(arm, s)] = run
    return runs, mu["Female"] - mu["Male"]


def study1_null(n_studies: int = 200, *, n_patients: int = 1500, labels: tuple[str, ...] = ("a", "b", "c"),
                mu: tuple[float, float] = (0.70, 0.75), seed_sd: float = 0.03, seeds: int = 5, bootstrap: int = 200,
                seed: int = 0, planted: float = 0.0) -> dict:
    """Rate of "one arm is fairer" declared by the paired test when both arms are the same (``planted = 0``; else
    its power when the second arm's Female TPR is lower by ``planted``), and coverage of the combined seed +
    sampling interval of a group's disparity in the first arm (true value mu_F - mu_M)."""
    from .emb_vs_img.evaluate import adjust_comparison, evaluate_dataset

    rng = np.random.default_rng(seed)
    declared = covered = covered_gap = total = 0
    t_covered = 0
    for study in range(n_studies):
        runs, truth = _study1_runs(rng, n_patients, list(labels), {"Female": mu[0], "Male": mu[1]}, seed_sd, ("emb", "img"), seeds,
                                   planted)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = evaluate_dataset(runs, "sim", ["sex"], threshold="0.5", summary_exclude=[], bootstrap=bootstrap, seed=study)
        comparison = adjust_comparison(out["comparison"])
        avg = comparison[comparison["metric"] == "average_gap"].iloc[0]
        declared += bool(avg["p_holm"] < 0.05)
        disp = out["disparities"][(out["disparities"]["group"] == "Female")]
        disp = disp[disp["model"] == "emb"]  # the arm whose truth is mu_F - mu_M whatever is planted
        covered += int(((disp["ci_low"] <= truth) & (truth <= disp["ci_high"])).sum())
        gaps = out["gaps"][out["gaps"]["model"] == "emb"]
        covered_gap += int(((gaps["ci_low"] <= 2 * abs(truth)) & (2 * abs(truth) <= gaps["ci_high"])).sum())
        total += len(disp)
        # the seeds-only Student-t interval the study used before, for comparison
        from ..fairness import mean_ci_over_seeds
        for arm in ("emb",):
            for label in labels:
                per_seed = []
                for s in range(seeds):
                    test = runs[(arm, s)][(runs[(arm, s)]["split"] == "test") & (runs[(arm, s)][f"y_{label}"] == 1)]
                    tpr = test.groupby("sex")[f"p_{label}"].mean()
                    per_seed.append(tpr["Female"] - tpr["Male"])
                _, lo, hi = mean_ci_over_seeds(np.array(per_seed))
                t_covered += int(lo <= truth <= hi)
    return {"studies": n_studies, "seeds": seeds, "bootstrap": bootstrap, "true_disparity": mu[0] - mu[1],
            "planted_arm_difference": planted, "n_patients": n_patients,
            ("arm_declared_different_rate" if not planted else "power_average_gap"): declared / n_studies,
            "coverage_disparity_combined": covered / total, "coverage_gap_combined": covered_gap / total,
            "coverage_disparity_seeds_only_t": t_covered / total}

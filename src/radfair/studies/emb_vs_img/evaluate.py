"""Study 1 evaluation: each run through the fairness engine, then mean and Student-t CI over seeds.

Per run (``radfair.fairness.run_audit``, no bootstrap): thresholds chosen on the run's validation rows
(F1-optimal by default), then on the shared test rows AUROC per label and the CheXclusion TPR disparity
of every group. Across the seeds of a (dataset, model):

* ``auc``: mean and t-interval (t_{n-1}; t_4 = 2.776 for 5 seeds, anchor bug 5) of the per-seed AUROC;
* ``disparities``: mean and t-interval of each group's disparity; every *declared* group is kept even
  with no test rows (NaN, and a warning; anchor bug 4);
* ``gap`` per label = max - min over groups of the **seed-mean** disparities ("gap of the means");
* ``average gap`` = per-seed average over labels (No Finding excluded) of the per-seed gaps, then mean and
  t-interval over seeds ("mean of per-seed average gaps"); lowest/highest label and most (un)favourable
  groups come from the seed-mean disparities.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from ...data.schema import AGE_GROUPS, INSURANCES, RACES, SEXES
from ...fairness import AuditConfig, extreme_groups, mean_ci_over_seeds, run_audit

DECLARED_GROUPS = {"sex": SEXES, "age_group": AGE_GROUPS, "race": RACES, "insurance": INSURANCES}
CONVENTIONS = {
    "threshold": "per label and run, chosen on that run's validation rows; prediction = score >= threshold",
    "tpr_disparity": "CheXclusion: binary attribute TPR_g - TPR_(not g); otherwise TPR_g - median over groups with >= 1 positive",
    "seed_interval": "mean over seeds +- t_(n-1, 0.975) * sd / sqrt(n) (Student t; t_4 = 2.776 for 5 seeds)",
    "gap": "max - min over groups of the seed-mean disparities (gap of the means)",
    "average_gap": "per seed: mean over summary labels of that seed's gaps; then mean and t-interval over seeds",
    "extreme_groups": "group with the max (favourable) / min (unfavourable) seed-mean disparity on the most summary labels",
    "declared_groups": "every declared group is reported; a group without test rows or positives is NaN with a warning",
}


def audit_run(scored: pd.DataFrame, attributes: list[str], threshold: str, summary_exclude: list[str]) -> dict:
    """The engine's point estimates for one run (no bootstrap); warnings are returned, not printed."""
    present = [a for a in attributes if a in scored.columns and scored[a].notna().any()]
    config = AuditConfig(attributes=present, threshold=threshold, bootstrap=0, summary_exclude=summary_exclude)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tables = run_audit(scored, config)
    tables["warnings"] = sorted({str(w.message) for w in caught})
    return tables


def aggregate(runs: list[dict], dataset: str, model: str, attributes: list[str], summary_exclude: list[str],
              level: float = 0.95) -> dict[str, pd.DataFrame | list[str]]:
    """Combine the per-seed audits of one (dataset, model) into the study's long tables."""
    notes: list[str] = []
    perf = pd.concat([r["performance"].assign(seed=i) for i, r in enumerate(runs)])
    auc_rows = []
    for label, g in perf.groupby("label", sort=False):
        mean, low, high = mean_ci_over_seeds(g["auc"].to_numpy())
        auc_rows.append({"dataset": dataset, "model": model, "label": label, "auc_mean": float(mean),
                         "auc_ci_low": float(low), "auc_ci_high": float(high), "n_seeds": int(g["auc"].notna().sum())})
    labels = list(dict.fromkeys(perf["label"]))
    summary_labels = [label for label in labels if label not in summary_exclude]
    disp = pd.concat([r["disparities"].assign(seed=i) for i, r in enumerate(runs)])
    counts = runs[0]["group_metrics"].set_index(["attribute", "group", "label"])["n_pos"]
    disp_rows, gap_rows, summary_rows = [], [], []
    for attribute in attributes:
        present = disp[disp["attribute"] == attribute]
        if present.empty:
            notes.append(f"{dataset}: attribute {attribute} has no values; not reported")
            continue
        groups = list(DECLARED_GROUPS.get(attribute, ())) + sorted(set(present["group"]) - set(DECLARED_GROUPS.get(attribute, ())))
        cube = np.full((len(runs), len(groups), len(labels)), np.nan)
        share = np.full((len(groups), len(labels)), np.nan)
        for row in present.itertuples():
            cube[row.seed, groups.index(row.group), labels.index(row.label)] = row.tpr_disparity
            share[groups.index(row.group), labels.index(row.label)] = row.share_of_positives
        for group in groups:
            if group not in set(present["group"]):
                notes.append(f"{dataset}: {attribute}={group} has no test rows; reported as NaN")
        mean, low, high = mean_ci_over_seeds(cube, level)
        for g, group in enumerate(groups):
            for j, label in enumerate(labels):
                disp_rows.append({"dataset": dataset, "model": model, "attribute": attribute, "label": label, "group": group,
                                  "n_pos": int(counts.get((attribute, group, label), 0)), "share_of_positives": share[g, j],
                                  "disparity_mean": mean[g, j], "ci_low": low[g, j], "ci_high": high[g, j],
                                  "n_seeds": int(np.sum(~np.isnan(cube[:, g, j])))})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            gap_of_means = np.nanmax(mean, axis=0) - np.nanmin(mean, axis=0)
        for j, label in enumerate(labels):
            gap_rows.append({"dataset": dataset, "model": model, "attribute": attribute, "label": label, "gap": gap_of_means[j]})
        per_seed = np.array([r["summary"].set_index("attribute").loc[attribute, "average_gap"]
                             if attribute in set(r["summary"]["attribute"]) else np.nan for r in runs])
        avg, avg_low, avg_high = mean_ci_over_seeds(per_seed, level)
        mask = np.array([label in summary_labels for label in labels])
        gaps = np.where(mask, gap_of_means, np.nan)
        finite = np.isfinite(gaps)
        defined = ~np.all(np.isnan(mean), axis=1)  # groups with a defined disparity somewhere
        names = [g for g, d in zip(groups, defined, strict=True) if d]
        summary_rows.append({
            "attribute": attribute, "dataset": dataset, "model": model,
            "average_gap": float(avg), "ci_low": float(avg_low), "ci_high": float(avg_high), "n_seeds": int(np.sum(~np.isnan(per_seed))),
            "lowest_label": labels[int(np.nanargmin(gaps))] if finite.any() else "",
            "lowest_gap": float(np.nanmin(gaps)) if finite.any() else np.nan,
            "highest_label": labels[int(np.nanargmax(gaps))] if finite.any() else "",
            "highest_gap": float(np.nanmax(gaps)) if finite.any() else np.nan,
            "unfavorable": extreme_groups(mean[defined][:, mask], names, favourable=False) if names else "",
            "favorable": extreme_groups(mean[defined][:, mask], names, favourable=True) if names else "",
        })
    warn_lines = sorted({w for r in runs for w in r["warnings"]})
    return {"auc": pd.DataFrame(auc_rows), "disparities": pd.DataFrame(disp_rows), "gaps": pd.DataFrame(gap_rows),
            "summary": pd.DataFrame(summary_rows), "notes": notes + [f"{dataset}/{model}: {w}" for w in warn_lines]}

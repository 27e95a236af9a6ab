"""Study 1 evaluation: every run of a dataset under the same patient resamples, then seeds and test sampling together.

For one dataset, every (arm, seed) run scores the same saved test split. The fairness engine
(:func:`radfair.fairness.shared_replicates`) chooses each run's thresholds on that run's validation rows (F1
by default), and evaluates every run on the test rows under the same ``bootstrap`` patient resamples. From
those, per arm:

* point estimates: the mean over seeds of each run's AUROC and CheXclusion TPR disparity (paper eqs. 1-2);
  the gap per label and the average gap under the named ``averaging`` convention (paper eq. 3):
  ``seed-mean`` (the paper's: max - min of the seed-mean disparities, average over summary labels) or
  ``per-seed`` (each seed's gaps, then their mean);
* intervals that carry **both** sources of variance, seeds (training randomness) and test-set sampling
  (patients): replicate b resamples the patients (shared by every run) *and* the seeds of each arm with
  replacement; seed deviations are scaled by sqrt(S / (S - 1)) around the replicate's seed mean, so the seed
  component of the variance of the mean is s^2 / S rather than the plain bootstrap's (S - 1) s^2 / S^2.
  Disparities and AUROC: percentile intervals. Gaps and average gaps: max-t projection intervals on the
  seed-mean disparities (as ``radfair audit``) with bias-corrected estimates (``_bc``), inside their range;
* the **paired comparison** of the two arms (``arm_comparison.csv``): for each disparity, gap, average gap and
  AUROC, delta = arm A - arm B on the same replicates; the plug-in estimate, an interval
  ``estimate +- t_df se*`` and the matching two-sided p-value, with ``se*`` the standard deviation of the paired
  replicate deltas and ``df`` by Satterthwaite (with 5 seeds the seed variance is estimated on 4 degrees of
  freedom: a normal quantile would be anti-conservative); Holm and Benjamini-Hochberg within each metric's
  family (every dataset, attribute, label and group of that metric).

Most (un)favourable groups follow the named ``counting`` convention (``sign``, the paper's; ``strict-extreme``).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import stats

from ...data.schema import AGE_GROUPS, INSURANCES, RACES, SEXES
from ...fairness import (
    AVERAGING,
    COUNTING,
    AuditConfig,
    benjamini_hochberg,
    gap,
    holm,
    percentile_ci,
    shared_replicates,
    summary_conventions,
)
from ...fairness._intervals import bias_corrected, max_t_band, spread_interval
from ...fairness._seed_summary import extreme_group_text

DECLARED_GROUPS = {"sex": SEXES, "age_group": AGE_GROUPS, "race": RACES, "insurance": INSURANCES}
COMPARISON_METRICS = ("disparity", "gap", "average_gap", "auc")
#: A group with fewer test positives than this is flagged small_group and never listed as a finding.
MIN_GROUP_POSITIVES = 10


def conventions(averaging: str, counting: str, bootstrap: int, level: float) -> dict[str, str]:
    """The conventions of one evaluation, by name, for ``study.json`` and the report."""
    named = summary_conventions(averaging, counting)
    return {
        "threshold": "per label and run, chosen on that run's validation rows; prediction = score >= threshold",
        "tpr_disparity": named["tpr_disparity"],
        "averaging": named["averaging"].replace("; no interval (it is not a mean over seeds)", ""),
        "counting": named["counting"],
        "intervals": f"{level:.0%} intervals from {bootstrap} replicates that resample test patients (the same for every "
                     "run and arm) and, per arm, the seeds with replacement (deviations scaled by sqrt(S/(S-1))); "
                     "disparities and AUROC: percentile; gaps and average gaps: max-t projection intervals on the "
                     "seed-mean disparities (per-seed averaging: percentile), with bias-corrected estimates (_bc)",
        "arm_comparison": "delta = first arm - second arm on the same replicates (plug-in: the upward bias of max - min cancels "
                          "between arms, while a bootstrap bias correction of the delta added a third to its sd in the null "
                          "simulation); estimate +- "
                          "t_df se*, p = 2 P(T_df > |estimate|/se*), se* = sd of the paired replicate deltas, df by "
                          "Satterthwaite (the seed variance components, two-way minus patient-only replicates, have S - 1 "
                          "degrees of freedom each); Holm and BH within each metric (disparity, gap, average_gap, auc) over "
                          "datasets, attributes, labels and groups",
        "fairer_arm": "Table 3 and Table 4 bold an arm only when the paired difference is significant after Holm",
        "declared_groups": "every declared group is reported; a group without test rows or positives is NaN with a warning",
    }


def _seed_resample(values: np.ndarray, idx: np.ndarray, scale: float) -> np.ndarray:
    """values (S, B, ...) -> (B, ...): the mean over resampled seeds ``idx`` (B, S), deviations scaled by ``scale``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        centre = np.nanmean(values, axis=0)  # (B, ...)
        b = np.arange(values.shape[1])[:, None]
        drawn = np.nanmean(values[idx, b], axis=1)  # values[idx[b, k], b] -> (B, S, ...) -> mean over k
    return centre + scale * (drawn - centre)


class ArmStatistics:
    """Seed-mean point estimates and seed x patient replicates of one arm of one dataset."""

    def __init__(self, shared, runs: list[int], attributes: list[str], summary_mask: np.ndarray, averaging: str,
                 rng: np.random.Generator, level: float):
        n_seeds = len(runs)
        self.n_seeds = n_seeds
        n_reps = next(iter(shared.reps[runs[0]].values())).shape[0] if shared.reps[runs[0]] else 0
        idx = rng.integers(0, n_seeds, size=(n_reps, n_seeds)) if n_seeds > 1 else np.zeros((n_reps, 1), np.int64)
        scale = float(np.sqrt(n_seeds / (n_seeds - 1))) if n_seeds > 1 else 1.0
        self.point: dict[str, np.ndarray] = {}
        self.reps: dict[str, np.ndarray] = {}
        self.reps_patient: dict[str, np.ndarray] = {}  # no seed resampling: separates the two variance components
        self.per_seed: dict[str, np.ndarray] = {}
        bounds = {"auc|all": (0.0, 1.0)}
        keys = ["auc|all"] + [f"disparity|{a}" for a in attributes]
        for key in keys:
            if key not in shared.point[runs[0]]:
                continue
            per_seed = np.stack([shared.point[r][key] for r in runs])
            self.per_seed[key] = per_seed
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                self.point[key] = np.nanmean(per_seed, axis=0)
            if n_reps:
                reps = np.stack([shared.reps[r][key] for r in runs])  # (S, B, ...)
                self.reps[key] = np.clip(_seed_resample(reps, idx, scale), *bounds.get(key, (-1.0, 1.0)))
                self.reps_patient[key] = _nanmean(reps, axis=0)  # the seeds' mean on each patient resample: sampling only
        self.intervals: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.bc: dict[str, np.ndarray] = {}
        for attribute in attributes:
            key = f"disparity|{attribute}"
            if key not in self.point:
                continue
            n_groups = self.point[key].shape[0]
            upper = 2.0 if n_groups == 2 else 1.0
            mean_disp = self.point[key]
            if averaging == "seed-mean":
                gap_point = gap(mean_disp)
                gap_reps = gap(self.reps[key]) if key in self.reps else None
                gap_patient = gap(self.reps_patient[key]) if key in self.reps else None
            else:
                gap_point = np.nanmean(gap(self.per_seed[key]), axis=0)
                per_run = np.stack([gap(shared.reps[r][key]) for r in runs]) if key in self.reps else None
                gap_reps = _seed_resample(per_run, idx, scale) if per_run is not None else None
                gap_patient = _nanmean(per_run, axis=0) if per_run is not None else None
            avg_point = _nanmean(gap_point[summary_mask])
            self.point[f"gap|{attribute}"], self.point[f"average_gap|{attribute}"] = gap_point, np.array(avg_point)
            if gap_reps is None:
                nan = np.full(gap_point.shape, np.nan)
                self.intervals[f"gap|{attribute}"] = (nan, nan)
                self.intervals[f"average_gap|{attribute}"] = (np.array(np.nan), np.array(np.nan))
                self.bc[f"gap|{attribute}"], self.bc[f"average_gap|{attribute}"] = nan, np.array(np.nan)
                continue
            gap_reps = np.clip(gap_reps, 0.0, upper)
            avg_reps = _nanmean(gap_reps[:, summary_mask], axis=-1)
            self.reps[f"gap|{attribute}"], self.reps[f"average_gap|{attribute}"] = gap_reps, avg_reps
            self.reps_patient[f"gap|{attribute}"] = gap_patient
            self.reps_patient[f"average_gap|{attribute}"] = _nanmean(gap_patient[:, summary_mask], axis=-1)
            if averaging == "seed-mean":  # max-t projection of a band on the seed-mean disparities
                lo, hi = max_t_band(mean_disp, self.reps[key], None, level, family_axes=(0,), bounds=(-1.0, 1.0))
                gap_ci = tuple(np.clip(v, 0.0, upper) for v in spread_interval(lo, hi, axis=0))
                defined = summary_mask & np.isfinite(gap_point)
                if defined.any():
                    lo3, hi3 = max_t_band(mean_disp[:, defined], self.reps[key][:, :, defined], None, level, family_axes=(0, 1),
                                          bounds=(-1.0, 1.0))
                    per_label = spread_interval(lo3, hi3, axis=0)
                    avg_ci = tuple(np.clip(np.array(np.mean(v)), 0.0, upper) for v in per_label)
                else:
                    avg_ci = (np.array(np.nan), np.array(np.nan))
            else:
                gap_ci = tuple(np.clip(v, 0.0, upper) for v in percentile_ci(gap_reps, level))
                avg_ci = tuple(np.clip(v, 0.0, upper) for v in percentile_ci(avg_reps, level))
            self.intervals[f"gap|{attribute}"], self.intervals[f"average_gap|{attribute}"] = gap_ci, avg_ci
            self.bc[f"gap|{attribute}"] = bias_corrected(gap_point, gap_reps, *gap_ci)
            self.bc[f"average_gap|{attribute}"] = bias_corrected(np.array(avg_point), avg_reps, *avg_ci)
        for key in keys:
            if key in self.reps:
                bound = bounds.get(key, (-1.0, 1.0))
                self.intervals[key] = tuple(np.clip(v, *bound) for v in percentile_ci(self.reps[key], level))
            elif key in self.point:
                nan = np.full(self.point[key].shape, np.nan)
                self.intervals[key] = (nan, nan)


def _nanmean(values, axis=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(values, axis=axis)


def evaluate_dataset(runs: dict[tuple[str, int], pd.DataFrame], dataset: str, attributes: list[str], *, threshold: str = "f1",
                     summary_exclude: list[str] | None = None, bootstrap: int = 1000, seed: int = 0, level: float = 0.95,
                     averaging: str = "seed-mean", counting: str = "sign", paths: dict | None = None,
                     threshold_in_bootstrap: bool = False) -> dict:
    """Every table of one dataset from its runs' scored tables ``{(arm, seed): scored}``.

    Returns ``auc`` (with each seed's test AUROC, ``auc_seed<S>``), ``disparities``, ``gaps``, ``summary`` (Table 4 rows) and ``comparison`` (the paired
    arm comparison, without the multiple-testing columns: :func:`adjust_comparison` adds them over every
    dataset) as DataFrames, plus ``notes`` (warnings). ``averaging`` is one of :data:`AVERAGING`, ``counting``
    one of :data:`COUNTING` (ValueError otherwise).
    """
    if averaging not in AVERAGING:
        raise ValueError(f"unknown averaging {averaging!r}; expected one of {AVERAGING}")
    if counting not in COUNTING:
        raise ValueError(f"unknown counting {counting!r}; expected one of {COUNTING}")
    summary_exclude = list(summary_exclude if summary_exclude is not None else ["no_finding"])
    keys = list(runs)
    tables = [runs[k] for k in keys]
    first = tables[0]
    present = [a for a in attributes if a in first.columns and first[a].notna().any()]
    notes = [f"{dataset}: attribute {a} has no values; not reported" for a in attributes if a not in present]
    config = AuditConfig(attributes=present, threshold=threshold, bootstrap=bootstrap, seed=seed, level=level,
                         summary_exclude=summary_exclude, threshold_in_bootstrap=threshold_in_bootstrap)
    names = [str((paths or {}).get(k, f"{dataset}/{k[0]}/seed{k[1]}")) for k in keys]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        shared = shared_replicates(tables, config, names)
    notes += [f"{dataset}: {m}" for m in sorted({str(w.message) for w in caught if issubclass(w.category, UserWarning)})]
    labels = shared.labels
    summary_mask = np.array([label not in summary_exclude for label in labels])
    arms = list(dict.fromkeys(k[0] for k in keys))
    rng = np.random.default_rng([seed, 1])
    by_arm = {arm: ArmStatistics(shared, [i for i, k in enumerate(keys) if k[0] == arm], present, summary_mask, averaging, rng, level)
              for arm in arms}
    counts = {a: shared.point[0][f"n_pos|{a}"] for a in present}
    out = {"auc": [], "disparities": [], "gaps": [], "summary": [], "comparison": []}
    for arm, st in by_arm.items():
        if "auc|all" in st.point:
            low, high = st.intervals["auc|all"]
            for j, label in enumerate(labels):
                seeds = [k[1] for k in keys if k[0] == arm]  # the order of st.per_seed's rows
                out["auc"].append({"dataset": dataset, "model": arm, "label": label, "auc_mean": float(st.point["auc|all"][j]),
                                   "auc_ci_low": float(low[j]), "auc_ci_high": float(high[j]),
                                   "n_seeds": int(np.sum(np.isfinite(st.per_seed["auc|all"][:, j]))),
                                   **{f"auc_seed{s}": float(st.per_seed["auc|all"][i, j]) for i, s in enumerate(seeds)}})
        for attribute in present:
            groups = shared.groups[attribute]
            declared = list(DECLARED_GROUPS.get(attribute, ()))
            absent = [g for g in declared if g not in groups]
            notes += [f"{dataset}: {attribute}={g} has no test rows; reported as NaN" for g in absent]
            key = f"disparity|{attribute}"
            mean, (low, high) = st.point[key], st.intervals[key]
            n_pos = counts[attribute]
            share = n_pos / np.where(n_pos.sum(axis=0) > 0, n_pos.sum(axis=0), np.nan)
            seeds_defined = np.sum(np.isfinite(st.per_seed[key]), axis=0)
            order = declared + [g for g in groups if g not in declared]  # every declared group, in declared order
            for label_index, label in enumerate(labels):
                for group in order:
                    g = groups.index(group) if group in groups else None
                    def value(a, g=g, j=label_index):
                        return (float(a[g, j]) if g is not None else np.nan)
                    out["disparities"].append({
                        "dataset": dataset, "model": arm, "attribute": attribute, "label": label, "group": group,
                        "n_pos": int(n_pos[g, label_index]) if g is not None else 0, "share_of_positives": value(share),
                        "disparity_mean": value(mean), "ci_low": value(low), "ci_high": value(high),
                        "n_seeds": int(seeds_defined[g, label_index]) if g is not None else 0,
                        "small_group": bool(g is None or n_pos[g, label_index] < MIN_GROUP_POSITIVES)})
                gap_ci = st.intervals[f"gap|{attribute}"]
                out["gaps"].append({"dataset": dataset, "model": arm, "attribute": attribute, "label": label,
                                    "gap": float(st.point[f"gap|{attribute}"][label_index]),
                                    "gap_bc": float(st.bc[f"gap|{attribute}"][label_index]),
                                    "ci_low": float(gap_ci[0][label_index]), "ci_high": float(gap_ci[1][label_index])})
            gaps = np.where(summary_mask, st.point[f"gap|{attribute}"], np.nan)
            finite = np.isfinite(gaps)
            defined = ~np.all(np.isnan(mean), axis=1)
            group_names = [g for g, d in zip(groups, defined, strict=True) if d]
            avg_ci = st.intervals[f"average_gap|{attribute}"]
            out["summary"].append({
                "attribute": attribute, "dataset": dataset, "model": arm,
                "average_gap": float(st.point[f"average_gap|{attribute}"]),
                "average_gap_bc": float(st.bc[f"average_gap|{attribute}"]),
                "ci_low": float(avg_ci[0]), "ci_high": float(avg_ci[1]), "n_seeds": st.n_seeds,
                "lowest_label": labels[int(np.nanargmin(gaps))] if finite.any() else "",
                "lowest_gap": float(np.nanmin(gaps)) if finite.any() else np.nan,
                "highest_label": labels[int(np.nanargmax(gaps))] if finite.any() else "",
                "highest_gap": float(np.nanmax(gaps)) if finite.any() else np.nan,
                "unfavorable": extreme_group_text(mean[defined][:, summary_mask], group_names, favourable=False, counting=counting)
                if group_names else "",
                "favorable": extreme_group_text(mean[defined][:, summary_mask], group_names, favourable=True, counting=counting)
                if group_names else "",
            })
    if len(arms) >= 2:
        out["comparison"] = _compare(by_arm[arms[0]], by_arm[arms[1]], arms[:2], dataset, labels, present, shared.groups, level)
    frames = {k: pd.DataFrame(v) for k, v in out.items()}
    frames["notes"] = notes
    return frames


def _compare(a: ArmStatistics, b: ArmStatistics, names: list[str], dataset: str, labels: list[str], attributes: list[str],
             groups: dict[str, list[str]], level: float) -> list[dict]:
    """Paired rows ``a - b`` for disparity, gap, average gap and AUROC (normal interval and p-value on the replicates)."""
    rows = []
    at = (slice(None),)

    def seed_variance(arm: ArmStatistics, key, index) -> float:
        """The seed component of an arm's variance: two-way replicates minus patient-only replicates (>= 0)."""
        both, patient = arm.reps[key][at + index], arm.reps_patient[key][at + index]
        ok = np.isfinite(both) & np.isfinite(patient)
        return max(float(np.var(both[ok], ddof=1) - np.var(patient[ok], ddof=1)), 0.0) if ok.sum() > 1 else 0.0

    def add(metric, key, index, attribute, label, group, corrected: bool, bound: float):
        va, vb = float(a.point[key][index]), float(b.point[key][index])
        estimate = va - vb
        df = np.inf
        if key in a.reps and key in b.reps:
            deltas = a.reps[key][at + index] - b.reps[key][at + index]
            deltas = deltas[np.isfinite(deltas)]
            se = float(np.std(deltas, ddof=1)) if len(deltas) > 1 else np.nan
            if corrected and len(deltas):
                estimate = float(2 * estimate - np.mean(deltas))
            # Satterthwaite: the seed components have S - 1 degrees of freedom each, the patient component many
            v_a, v_b = seed_variance(a, key, index), seed_variance(b, key, index)
            pieces = (v_a ** 2 / max(a.n_seeds - 1, 1) if a.n_seeds > 1 else 0.0) + (v_b ** 2 / max(b.n_seeds - 1, 1) if b.n_seeds > 1 else 0.0)
            if pieces > 0 and se == se:
                df = max(se ** 4 / pieces, 1.0)
            q = stats.t.ppf(0.5 + level / 2, df)
            low, high = (np.clip(estimate - q * se, -bound, bound), np.clip(estimate + q * se, -bound, bound)) if se == se else (np.nan, np.nan)
            p = float(2 * stats.t.sf(abs(estimate) / se, df)) if se > 0 else (1.0 if estimate == 0 else 0.0) if se == se else np.nan
        else:
            low = high = p = np.nan
        if not np.isfinite(va - vb):
            estimate, low, high, p = np.nan, np.nan, np.nan, np.nan
        rows.append({"dataset": dataset, "attribute": attribute, "label": label, "group": group, "metric": metric,
                     names[0]: va, names[1]: vb, "delta": float(estimate), "ci_low": float(low), "ci_high": float(high),
                     "df": float(df), "p_value": p})

    for j, label in enumerate(labels):
        if "auc|all" in a.point and "auc|all" in b.point:
            add("auc", "auc|all", (j,), "(all)", label, "", False, 1.0)
    for attribute in attributes:
        key = f"disparity|{attribute}"
        if key not in a.point:
            continue
        bound = 2.0 if len(groups[attribute]) == 2 else 1.0
        for j, label in enumerate(labels):
            for g, group in enumerate(groups[attribute]):
                add("disparity", key, (g, j), attribute, label, group, False, 2.0)
            add("gap", f"gap|{attribute}", (j,), attribute, label, "", False, bound)
        add("average_gap", f"average_gap|{attribute}", (), attribute, "(average)", "", False, bound)
    return rows


def adjust_comparison(comparison: pd.DataFrame) -> pd.DataFrame:
    """Holm and Benjamini-Hochberg within each metric's family (all datasets, attributes, labels, groups)."""
    out = comparison.copy()
    out["p_holm"] = np.nan
    out["p_bh"] = np.nan
    for _, rows in out.groupby("metric", sort=False):
        p = rows["p_value"].to_numpy(float)
        out.loc[rows.index, "p_holm"] = holm(p)
        out.loc[rows.index, "p_bh"] = benjamini_hochberg(p)
    return out

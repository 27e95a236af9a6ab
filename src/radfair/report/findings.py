"""Findings in plain words: only effects whose interval excludes 0, each with its number and interval.

Each function takes the long table a run wrote and returns sentences; when no interval excludes 0 it
returns one sentence saying so (never silence, never an effect that is not resolved).
"""

from __future__ import annotations

import pandas as pd

from .tables import excludes_zero, interval

PRETTY_METRICS = {"eodd_worst": "EODD (worst case)", "eodd_mean": "EODD (mean)", "eop": "EOP (TPR gap)", "gap": "TPR-disparity gap",
                  "auc": "AUROC", "average_gap": "average gap", "dp_difference": "demographic parity difference",
                  "calibration_gap": "calibration gap"}


def pretty(label: str) -> str:
    return str(label).replace("_", " ")


def _significant(df: pd.DataFrame, low: str = "ci_low", high: str = "ci_high") -> pd.DataFrame:
    if df.empty:
        return df
    return df[[excludes_zero(lo, hi) for lo, hi in zip(df[low], df[high], strict=True)]]


def none_sentence(what: str, intervals: bool = True) -> str:
    if not intervals:
        return (f"No intervals were computed (no bootstrap), so no {what} can be called resolved; the point estimates are "
                "in the tables. Rerun with --bootstrap 1000 for intervals.")
    return f"No {what} has a 95% interval that excludes 0: no effect is resolved at this sample size."


def disparity_findings(disparities: pd.DataFrame, value: str = "tpr_disparity", prefix: str = "", seeds: str = "") -> list[str]:
    """Per attribute and group: in how many findings the TPR is lower (higher) than the reference, and the largest.

    ``disparities`` has label, attribute, group, ``value``, ci_low, ci_high. For a binary attribute only the
    lower side is stated (the other group's higher TPR is its mirror image).
    """
    out = []
    left_out = 0
    for attribute, part in disparities.groupby("attribute", sort=False):
        groups = list(dict.fromkeys(part["group"]))
        binary = len(groups) == 2
        for group in groups:
            rows = part[(part["group"] == group) & part[value].notna()]
            if "small_group" in rows.columns:  # too few positives to rank: listed in the tables, never as findings
                left_out += len(_significant(rows[rows["small_group"].astype(bool)]))
                rows = rows[~rows["small_group"].astype(bool)]
            n = rows["label"].nunique()
            sig = _significant(rows)
            for direction, sub in (("lower", sig[sig[value] < 0]), ("higher", sig[sig[value] > 0])):
                if sub.empty or (binary and direction == "higher"):
                    continue
                worst = sub.loc[sub[value].abs().idxmax()]
                out.append(f"{prefix}{group} patients ({attribute}): {direction} TPR in {len(sub)} of {n} findings{seeds}; "
                           f"largest gap {pretty(worst['label'])} {interval(worst[value], worst['ci_low'], worst['ci_high'], signed=True)}")
    if left_out:
        out.append(f"{prefix}{left_out} disparit{'y' if left_out == 1 else 'ies'} of small groups (fewer positives than the minimum "
                   "group size) with an interval excluding 0 are not listed as findings: see disparities.csv (small_group)")
    return out


def underdiagnosis_findings(group_metrics: pd.DataFrame | None) -> list[str]:
    """The under-diagnosis view (Seyyed-Kalantari et al., Nat Med 2021): FPR of No Finding per group (patients with a
    finding called healthy), else each attribute's largest FNR difference over findings; only where the highest
    and lowest groups' intervals do not overlap."""
    if group_metrics is None or group_metrics.empty or "fnr" not in group_metrics.columns:
        return []
    out = []
    nf = group_metrics[group_metrics["label"] == "no_finding"]
    source, rate, what = (nf, "fpr", "under-diagnosis (FPR of No Finding: patients with a finding called healthy)") if len(nf) else \
        (group_metrics, "fnr", "missed findings (FNR)")
    for attribute, part in source.groupby("attribute", sort=False):
        part = part.dropna(subset=[rate])
        if len(part) < 2:
            continue
        best = None
        for label, rows in part.groupby("label", sort=False):
            if len(rows) < 2:
                continue
            hi, lo = rows.loc[rows[rate].idxmax()], rows.loc[rows[rate].idxmin()]
            separated = hi[f"{rate}_ci_low"] > lo[f"{rate}_ci_high"]
            if separated and (best is None or hi[rate] - lo[rate] > best[0]):
                best = (hi[rate] - lo[rate], label, hi, lo)
        if best is not None:
            _, label, hi, lo = best
            out.append(f"{attribute}: {what} on {pretty(label)} highest for {hi['group']} "
                       f"{interval(hi[rate], hi[f'{rate}_ci_low'], hi[f'{rate}_ci_high'])} vs {lo['group']} "
                       f"{interval(lo[rate], lo[f'{rate}_ci_low'], lo[f'{rate}_ci_high'])}")
    return out


def audit_findings(disparities: pd.DataFrame, summary: pd.DataFrame | None = None, comparison: pd.DataFrame | None = None,
                   group_metrics: pd.DataFrame | None = None) -> list[str]:
    out = underdiagnosis_findings(group_metrics) + disparity_findings(disparities)
    if summary is not None and not summary.empty:
        for row in _significant(summary).itertuples():
            out.append(f"{row.attribute}: average TPR-disparity gap over findings {interval(row.average_gap, row.ci_low, row.ci_high)} "
                       f"(bias-corrected {interval(row.average_gap_bc, float('nan'), float('nan'))}; max-t interval)")
    if comparison is not None and not comparison.empty:
        out += ["Compared table (B − A): " + f for f in
                shift_findings(comparison.rename(columns={"value_a": "baseline", "value_b": "reconstructed"}), keys=("attribute", "metric"))]
    intervals = bool(disparities["ci_low"].notna().any()) if "ci_low" in disparities.columns else True
    return out or [none_sentence("TPR disparity, gap or comparison", intervals)]


def study1_findings(disparities: pd.DataFrame, summary: pd.DataFrame, names: dict[str, str] | None = None,
                    comparison: pd.DataFrame | None = None) -> list[str]:
    """Per dataset and arm: average gaps (Table 4 data) and group disparities whose interval (seeds and test
    sampling) excludes 0; first, the paired arm comparisons significant after Holm."""
    names = names or {}
    out = []
    performance: list[str] = []  # AUROC differences come after the fairness findings (the study's question is fairness)
    if comparison is not None and len(comparison) and "p_holm" in comparison.columns:
        arms = [c for c in comparison.columns if c not in ("dataset", "attribute", "label", "group", "metric", "delta", "ci_low",
                                                          "ci_high", "p_value", "p_holm", "p_bh")][:2]
        sig = comparison[(comparison["p_holm"] < 0.05) & comparison["metric"].isin(["average_gap", "gap", "auc"])]
        order = {"average_gap": 0, "gap": 1, "auc": 2}
        sig = sig.assign(_o=sig["metric"].map(order)).sort_values(["_o", "p_holm"])
        for row in sig.itertuples():
            what = {"average_gap": "average gap", "gap": f"gap on {pretty(row.label)}", "auc": f"AUROC on {pretty(row.label)}"}[row.metric]
            by = "" if row.metric == "auc" else f" by {row.attribute}"
            lower = arms[0] if row.delta < 0 else arms[1]
            verdict = f"lower with {lower}" if row.metric != "auc" else f"higher with {arms[0] if row.delta > 0 else arms[1]}"
            (performance if row.metric == "auc" else out).append(
                f"{names.get(row.dataset, row.dataset)}: {what}{by} {verdict} ({arms[0]} − {arms[1]} "
                f"{interval(row.delta, row.ci_low, row.ci_high, signed=True)}, p_Holm = {row.p_holm:.3g})")
    for row in _significant(summary).itertuples():
        highest = f"; highest {pretty(row.highest_label)} {interval(row.highest_gap, None, None)}" if row.highest_label else ""
        out.append(f"{names.get(row.dataset, row.dataset)} · {row.model} · {row.attribute}: average gap "
                   f"{interval(row.average_gap, row.ci_low, row.ci_high)} over {row.n_seeds} seeds{highest}; "
                   f"most unfavourable {row.unfavorable or 'n/a'}")
    for (dataset, model), part in disparities.groupby(["dataset", "model"], sort=False):
        n_seeds = int(part["n_seeds"].max()) if "n_seeds" in part and len(part) else 0
        out += disparity_findings(part, "disparity_mean", prefix=f"{names.get(dataset, dataset)} · {model}: ",
                                  seeds=f" (95% interval over {n_seeds} seeds and test patients)")
    out += performance
    return out or [none_sentence("average gap or group TPR disparity")]


def shift_findings(shift: pd.DataFrame, keys=("dataset", "reconstructor", "level", "attribute", "metric")) -> list[str]:
    """Rows whose delta interval excludes 0, grouped by ``keys`` (+ mitigation when present): count and the largest.

    Holm-adjusted p-values are quoted when the table has them. Groups with a Holm-significant row come first,
    then by the size of the largest change.
    """
    if shift.empty:
        return []
    keys = [k for k in keys if k in shift.columns]
    if "mitigation" in shift.columns and "mitigation" not in keys:
        keys.insert(max(0, len(keys) - 2), "mitigation")
    ranked = []
    for key, part in shift.groupby(keys, sort=False, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        defined = part[part["delta"].notna()]
        sig = _significant(defined)
        if sig.empty:
            continue
        what_key = dict(zip(keys, key, strict=True))
        metric = PRETTY_METRICS.get(what_key.get("metric"), what_key.get("metric", ""))
        where = ", ".join(str(what_key[k]) for k in keys if k not in ("metric", "attribute"))
        head = f"{where} — " if where else ""
        attribute = what_key.get("attribute", "")
        for direction, sub in (("rose", sig[sig["delta"] > 0]), ("fell", sig[sig["delta"] < 0])):
            if sub.empty:
                continue
            top = sub.loc[sub["delta"].abs().idxmax()]
            n_holm = int((sub["p_holm"] < 0.05).sum()) if "p_holm" in sub.columns else 0
            if "p_holm" in sub.columns and sub["p_holm"].notna().any():
                p_top = f", p_Holm = {top['p_holm']:.3g}" if pd.notna(top["p_holm"]) else f", p_BH = {top['p_bh']:.3g} (exploratory)"
                holm, p = f" ({n_holm} significant after Holm); largest", p_top
            else:
                holm, p = "; largest", ""
            base = f" (from {interval(top['baseline'], None, None)})" if "baseline" in sub.columns else ""
            ranked.append(((-n_holm, -abs(float(top["delta"]))),
                           f"{head}{metric} by {attribute}: {direction} in {len(sub)} of {len(defined)} findings{holm} "
                           f"{pretty(top['label'])} {interval(top['delta'], top['ci_low'], top['ci_high'], signed=True)}{base}{p}"))
    return [text for _, text in sorted(ranked, key=lambda r: r[0])]


def shift_overview(shift: pd.DataFrame) -> str:
    """One sentence: how many rows have an interval excluding 0, and how many survive Holm (within the
    confirmatory family when the table marks one)."""
    defined = shift[shift["delta"].notna()]
    sig = _significant(defined)
    if "family" in defined.columns and "p_holm" in defined.columns:
        conf = defined[defined["family"] == "confirmatory"]
        holm = (f"; confirmatory family: {int((conf['p_holm'] < 0.05).sum())} of {len(conf)} significant after Holm, "
                f"{int((conf['p_bh'] < 0.05).sum())} after Benjamini-Hochberg, {int((conf['p_value'] < 0.05).sum())} with "
                "unadjusted p < 0.05 (the paper's count)")
    elif "p_holm" in defined.columns:
        holm = f", {int((defined['p_holm'] < 0.05).sum())} significant after Holm over the grid"
    else:
        holm = ""
    return f"{len(sig)} of {len(defined)} shifts have a 95% interval that excludes 0{holm}."


def study2_findings(bias_shift: pd.DataFrame) -> list[str]:
    found = shift_findings(bias_shift)
    return [shift_overview(bias_shift), *found] if found else [none_sentence("fairness shift (reconstructed − clean)")]

"""Benchmark: radfair's patient-level bootstrap audit vs fairlearn MetricFrame's own bootstrap.

41,000 test images of ~20,000 patients, 14 labels, attributes sex, age_group, race, insurance,
1000 replicates. radfair is timed end to end (thresholds, rates, disparities, gaps, EODD, selection
rate, calibration, max-t intervals), with and without AUROC. fairlearn's MetricFrame bootstraps
(``n_boot``) a few replicates per (label, attribute), extrapolated to 1000, twice: the per-group TPR
alone (the cheapest audit), and the per-group metrics the radfair audit reports beside it (TPR, FPR,
selection rate, AUROC). Prints medians, both speed-ups and the largest difference between the two
tools' point estimates.

    python benchmarks/bench_audit.py [--repeats 3] [--fairlearn-boot 3] [--only-cli]
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

from radfair.data.synthetic.scored import simulate_scored
from radfair.fairness import AuditConfig, run_audit

ATTRIBUTES = ["sex", "age_group", "race", "insurance"]


def time_radfair(df, auc: bool, repeats: int) -> tuple[float, dict]:
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = run_audit(df, AuditConfig(attributes=ATTRIBUTES, bootstrap=1000, seed=0, auc=auc))
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def time_fairlearn(df, thresholds: dict, n_boot: int, metrics: dict) -> tuple[float, dict]:
    """Seconds per bootstrap replicate: (time with n_boot - time without) / n_boot, and point estimates."""
    without, point = _fairlearn_run(df, thresholds, None, metrics)
    with_boot, _ = _fairlearn_run(df, thresholds, n_boot, metrics)
    print(f"fairlearn point estimates alone ({', '.join(metrics)}): {without:.1f}s")
    return (with_boot - without) / n_boot, point


def fairlearn_metrics(full: bool) -> dict:
    """TPR alone, or the per-group metrics radfair's audit reports (AUROC on the scores via sample_params)."""
    from fairlearn.metrics import false_positive_rate, selection_rate, true_positive_rate
    from sklearn.metrics import roc_auc_score

    if not full:
        return {"tpr": true_positive_rate}
    return {"tpr": true_positive_rate, "fpr": false_positive_rate, "selection_rate": selection_rate,
            "auc": lambda y_true, y_pred, scores: roc_auc_score(y_true, scores)}


def _fairlearn_run(df, thresholds: dict, n_boot: int | None, metrics: dict) -> tuple[float, dict]:
    from fairlearn.metrics import MetricFrame

    test = df[df["split"] == "test"]
    labels = list(thresholds)
    start = time.perf_counter()
    point = {}
    for label in labels:
        y = test[f"y_{label}"].to_numpy().astype(int)
        scores = test[f"p_{label}"].to_numpy()
        pred = (scores >= thresholds[label]).astype(int)
        for attribute in ATTRIBUTES:
            known = test[attribute].notna().to_numpy()
            params = {"auc": {"scores": scores[known]}} if "auc" in metrics else None
            frame = MetricFrame(metrics=metrics, y_true=y[known], y_pred=pred[known], sample_params=params,
                                sensitive_features=test.loc[known, attribute], n_boot=n_boot,
                                random_state=0 if n_boot else None, ci_quantiles=[0.025, 0.975] if n_boot else None)
            point[(label, attribute)] = frame.by_group
    return time.perf_counter() - start, point


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--fairlearn-boot", type=int, default=3)
    parser.add_argument("--only-cli", action="store_true", help="time `radfair audit` as a process only (no fairlearn, no in-process runs)")
    args = parser.parse_args()
    df = simulate_scored(n_patients=20_000, images_per_patient=2.05, seed=0, fractions=(0.0, 0.0001, 0.9999))
    val = simulate_scored(n_patients=2_000, seed=1, fractions=(0, 1, 0))
    val["patient_id"] = "v" + val["patient_id"]
    val["image_id"] = "v" + val["image_id"].astype(str)
    df = df.assign(split="test")
    import pandas as pd

    data = pd.concat([val, df], ignore_index=True)
    if args.only_cli:
        times = time_cli(data, args.repeats)
        print(f"`radfair audit` as a process: median {statistics.median(times):.2f} s over {args.repeats} runs "
              f"({', '.join(f'{t:.2f}' for t in sorted(times))})")
        return
    print(f"test images {len(df)}, patients {df['patient_id'].nunique()}, labels 14, attributes {ATTRIBUTES}")
    t_rates, out = time_radfair(data, auc=False, repeats=args.repeats)
    print(f"radfair audit, 1000 patient-level replicates, no AUROC: median {t_rates:.2f}s over {args.repeats} runs")
    t_full, out_full = time_radfair(data, auc=True, repeats=args.repeats)
    print(f"radfair audit, 1000 patient-level replicates, with AUROC: median {t_full:.2f}s over {args.repeats} runs")
    thresholds = dict(zip(out["thresholds"]["label"], out["thresholds"]["threshold"], strict=True))
    keys = ["label", "attribute", "group"]
    gm = out_full["group_metrics"].merge(out_full["selection_rates"][keys + ["selection_rate"]], on=keys).set_index(keys)
    rows = []
    for full in (False, True):
        metrics = fairlearn_metrics(full)
        per_boot, point = time_fairlearn(data, thresholds, args.fairlearn_boot, metrics)
        fl_total = per_boot * 1000
        diffs = [abs(gm.loc[(label, attribute, str(group)), name] - value)
                 for (label, attribute), frame in point.items() for group, row in frame.iterrows() for name, value in row.items()]
        rows.append((", ".join(metrics), per_boot, fl_total, fl_total / t_rates, fl_total / t_full, max(diffs), len(diffs)))
    print("\n| fairlearn MetricFrame bootstrap of | s / replicate | 1000 replicates | radfair no AUROC | radfair full audit "
          "| max abs difference of point estimates |")
    print("|---|---|---|---|---|---|")
    for name, per_boot, total, ratio_rates, ratio_full, diff, n in rows:
        print(f"| {name} | {per_boot:.2f} | {total:.0f} s ({total / 3600:.2f} h) | {ratio_rates:,.0f}x | {ratio_full:,.0f}x "
              f"| {diff:.1e} over {n} |")
    print(f"\nradfair (medians of {args.repeats}): {t_rates:.2f} s without AUROC, {t_full:.2f} s full audit")
    t_cli = statistics.median(time_cli(data, args.repeats))
    print(f"`radfair audit` as a process (read, audit, every table as CSV + parquet, 12 figures, audit.json): median "
          f"{t_cli:.2f} s over {args.repeats} runs, beside {t_full:.2f} s for run_audit in process")


def time_cli(data, repeats: int) -> list[float]:
    """Wall times of ``radfair audit`` as a subprocess, what a user waits for (figures included)."""
    import compileall
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    import radfair

    # an installed package has its bytecode (pip compiles it); an editable checkout run with PYTHONDONTWRITEBYTECODE=1
    # would recompile radfair's own modules on every run (about 0.1 s measured side by side), which no user waits for
    compileall.compile_dir(Path(radfair.__file__).parent, quiet=1)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "scored.parquet"
        data.to_parquet(path)
        command = [sys.executable, "-c", "from radfair.cli import main; main()", "audit", str(path), "--out", str(Path(tmp) / "out"),
                   "--attributes", ",".join(ATTRIBUTES), "--bootstrap", "1000"]
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True)
            times.append(time.perf_counter() - start)
    return times


if __name__ == "__main__":
    main()

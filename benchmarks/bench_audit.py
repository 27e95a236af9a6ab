"""Benchmark: radfair's patient-level bootstrap audit vs fairlearn MetricFrame's own bootstrap.

41,000 test images of ~20,000 patients, 14 labels, attributes sex, age_group, race, insurance,
1000 replicates. radfair is timed end to end (thresholds, rates, disparities, gaps, EODD, CIs),
with and without AUROC; fairlearn bootstraps the same per-group TPRs with ``n_boot`` for a few
replicates per (label, attribute) and is extrapolated to 1000 replicates. Prints medians.

    python benchmarks/bench_audit.py [--repeats 3] [--fairlearn-boot 3]
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


def time_fairlearn(df, thresholds: dict, n_boot: int) -> tuple[float, dict]:
    """Seconds per bootstrap replicate: (time with n_boot - time without) / n_boot, and point estimates."""
    without, point = _fairlearn_run(df, thresholds, None)
    with_boot, _ = _fairlearn_run(df, thresholds, n_boot)
    print(f"fairlearn point estimates alone: {without:.1f}s")
    return (with_boot - without) / n_boot, point


def _fairlearn_run(df, thresholds: dict, n_boot: int | None) -> tuple[float, dict]:
    from fairlearn.metrics import MetricFrame, true_positive_rate

    test = df[df["split"] == "test"]
    labels = list(thresholds)
    start = time.perf_counter()
    point = {}
    for label in labels:
        y = test[f"y_{label}"].to_numpy().astype(int)
        pred = (test[f"p_{label}"].to_numpy() >= thresholds[label]).astype(int)
        for attribute in ATTRIBUTES:
            known = test[attribute].notna().to_numpy()
            frame = MetricFrame(metrics=true_positive_rate, y_true=y[known], y_pred=pred[known],
                                sensitive_features=test.loc[known, attribute], n_boot=n_boot,
                                random_state=0 if n_boot else None, ci_quantiles=[0.025, 0.975] if n_boot else None)
            point[(label, attribute)] = frame.by_group
    return time.perf_counter() - start, point


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--fairlearn-boot", type=int, default=3)
    args = parser.parse_args()
    df = simulate_scored(n_patients=20_000, images_per_patient=2.05, seed=0, fractions=(0.0, 0.0001, 0.9999))
    val = simulate_scored(n_patients=2_000, seed=1, fractions=(0, 1, 0))
    val["patient_id"] = "v" + val["patient_id"]
    df = df.assign(split="test")
    import pandas as pd

    data = pd.concat([val, df], ignore_index=True)
    print(f"test images {len(df)}, patients {df['patient_id'].nunique()}, labels 14, attributes {ATTRIBUTES}")
    t_rates, out = time_radfair(data, auc=False, repeats=args.repeats)
    print(f"radfair audit, 1000 patient-level replicates, no AUROC: median {t_rates:.2f}s over {args.repeats} runs")
    t_full, out_full = time_radfair(data, auc=True, repeats=args.repeats)
    print(f"radfair audit, 1000 patient-level replicates, with AUROC: median {t_full:.2f}s over {args.repeats} runs")
    thresholds = dict(zip(out["thresholds"]["label"], out["thresholds"]["threshold"], strict=True))
    per_boot, point = time_fairlearn(data, thresholds, args.fairlearn_boot)
    fl_total = per_boot * 1000
    print(f"fairlearn MetricFrame n_boot (image-level rows): {per_boot:.2f}s per replicate -> {fl_total:.0f}s "
          f"({fl_total / 3600:.2f} h) extrapolated to 1000")
    print(f"speed-up (no AUROC): {fl_total / t_rates:.0f}x; (with AUROC): {fl_total / t_full:.0f}x")
    gm = out["group_metrics"].set_index(["label", "attribute", "group"])["tpr"]
    diffs = [abs(gm.loc[(label, attribute, str(group))] - value)
             for (label, attribute), series in point.items() for group, value in series.items()]
    print(f"max |TPR radfair - TPR fairlearn| over {len(diffs)} group estimates: {max(diffs):.2e}")


if __name__ == "__main__":
    main()

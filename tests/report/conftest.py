"""Tiny but real result folders: an audit by `radfair audit`, Study 1 and Study 2 folders in the runners' formats.

The audit runs the real command on a small simulated scored table. The study folders are written with the
studies' own table and figure functions (``table3``, ``table4``, ``figure1``) and the exact ``study.json`` /
CSV layouts of ``studies/*/run.py`` (a real study trains models: far too slow for these tests).
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from radfair.cli import app  # noqa: E402
from radfair.data.synthetic.scored import simulate_scored  # noqa: E402
from radfair.io import write_json, write_table, write_text  # noqa: E402
from radfair.studies.emb_vs_img.evaluate import conventions  # noqa: E402
from radfair.studies.emb_vs_img.figures import figure1  # noqa: E402
from radfair.studies.emb_vs_img.tables import table3, table4  # noqa: E402

LABELS = ["edema", "pleural_effusion", "no_finding"]


@pytest.fixture(scope="session")
def audit_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("audit")
    df = simulate_scored(600, labels=LABELS, seed=1, effects={("sex", "Female"): -1.0})
    df.to_parquet(root / "scored.parquet")
    result = CliRunner().invoke(app, ["audit", str(root / "scored.parquet"), "--out", str(root / "out"),
                                      "--attributes", "sex,race", "--bootstrap", "40"])
    assert result.exit_code == 0, result.output
    return root / "out"


def _png(path, title):
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.bar(["a", "b"], [1, 2])
    ax.set_title(title)
    fig.savefig(path, dpi=60)
    plt.close(fig)


@pytest.fixture(scope="session")
def study1_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("study1")
    rng = np.random.default_rng(0)
    auc, disp, gaps, summary = [], [], [], []
    for dataset in ("mimic", "chexpert"):
        for arm in ("emb", "img"):
            for label in LABELS:
                auc.append({"dataset": dataset, "model": arm, "label": label, "auc_mean": 0.8, "auc_ci_low": 0.78,
                            "auc_ci_high": 0.82, "n_seeds": 3})
                for group, shift in (("Female", -0.1), ("Male", 0.1)):
                    m = shift + rng.normal(0, 0.01)
                    # pleural effusion's interval includes 0: it must not be a finding
                    low, high = (m - 0.02, m + 0.02) if label != "pleural_effusion" else (m - 0.3, m + 0.3)
                    disp.append({"dataset": dataset, "model": arm, "attribute": "sex", "label": label, "group": group,
                                 "n_pos": 30, "share_of_positives": 0.5, "disparity_mean": m, "ci_low": low, "ci_high": high,
                                 "n_seeds": 3})
                gaps.append({"dataset": dataset, "model": arm, "attribute": "sex", "label": label, "gap": 0.2})
            summary.append({"attribute": "sex", "dataset": dataset, "model": arm, "average_gap": 0.2, "ci_low": 0.15,
                            "ci_high": 0.25, "n_seeds": 3, "lowest_label": "edema", "lowest_gap": 0.19,
                            "highest_label": "pleural_effusion", "highest_gap": 0.21, "unfavorable": "Female (2/2)",
                            "favorable": "Male (2/2)"})
    tables = {"auc": pd.DataFrame(auc), "disparities": pd.DataFrame(disp), "gaps": pd.DataFrame(gaps),
              "fairness_summary": pd.DataFrame(summary)}
    for name, frame in tables.items():
        write_table(frame, out / f"{name}.csv")
        write_table(frame, out / f"{name}.parquet")
    write_text(out / "table3.md", "# Table 3 — AUROC (tiny)\n\n" + table3(tables["auc"], ["emb", "img"]))
    write_text(out / "table4.md", "# Table 4 — TPR-disparity summary (tiny)\n\n" + table4(tables["fairness_summary"], ["emb", "img"]))
    d = tables["disparities"].query("dataset == 'mimic' and model == 'emb'")
    figure1(d, tables["gaps"].query("dataset == 'mimic' and model == 'emb'"), "MIMIC · emb · sex", out / "fig1_mimic_emb_sex.png")
    write_table(pd.DataFrame([{"dataset": "mimic", "arm": "emb", "model": "mlp", "train_flops": 1e6, "seconds_per_run": 2.0}]),
                out / "cost.csv")
    (out / "runs" / "abc123").mkdir(parents=True)
    write_json(out / "runs" / "abc123" / "run.json", {"run_id": "abc123", "kind": "train-classifier", "status": "done",
                                                      "seconds": 12.5, "device": "cpu", "label": "mimic-emb-seed0",
                                                      "attempts": [{"versions": {"radfair": "0.1.0", "torch": "2.13.0+cpu"}}]})
    _png(out / "runs" / "abc123" / "curve.png", "not a report figure")  # run-store PNGs are not shown
    write_json(out / "study.json", {
        "study": "emb-vs-img",
        "config": {"name": "tiny", "releases": "/data/releases", "embeddings": None, "datasets": ["mimic", "chexpert"],
                   "seeds": [0, 1, 2], "labels": LABELS, "uncertain": "zeros", "missing_embeddings": "drop",
                   "split": {"fractions": [0.8, 0.1, 0.1], "seed": 0}, "attributes": ["sex"], "threshold": "f1", "level": 0.95,
                   "summary_exclude": ["no_finding"], "device": "cpu", "jobs": 1,
                   "arms": {"emb": {"model": "mlp", "image_size": 224, "loop": {"epochs": 3, "patience": 2}},
                            "img": {"model": "densenet121", "image_size": 32, "loop": {"epochs": 3, "patience": 2}}}},
        "conventions": conventions("seed-mean", "sign", 1000, 0.95),
        "data": {"splits": {}, "dropped_without_embedding": {"mimic": 4, "chexpert": 0},
                 "counts": {"mimic": {"patients": {"test": 20, "train": 160, "val": 20}}}},
        "runs": [{"dataset": "mimic", "arm": "emb", "seed": 0, "run_id": "abc123", "status": "done"}],
        "warnings": ["mimic: age_group=80+ has no test rows; reported as NaN"],
        "timings": {"data_s": 1.5, "training_s": 30.25, "runs_trained": 1, "runs_skipped": 0}})
    return out


BIAS_SHIFT_COLUMNS = ["dataset", "reconstructor", "level", "label", "attribute", "metric", "baseline", "reconstructed", "delta",
                      "pct_change", "ci_low", "ci_high", "p_value", "p_holm", "p_bh"]


def bias_shift_rows():
    rows = []
    for recon in ("unet", "pix2pix"):
        for label in LABELS:
            for metric in ("eodd_worst", "eop"):
                significant = recon == "unet" and label == "edema" and metric == "eop"
                delta = 0.08 if significant else 0.01
                low, high = (0.03, 0.13) if significant else (-0.05, 0.07)
                rows.append({"dataset": "chexpert", "reconstructor": recon, "level": "xray_physical_3000", "label": label,
                             "attribute": "sex", "metric": metric, "baseline": 0.10, "reconstructed": 0.10 + delta, "delta": delta,
                             "pct_change": 100 * delta / 0.10, "ci_low": low, "ci_high": high,
                             "p_value": 0.001 if significant else 0.6, "p_holm": 0.012 if significant else 1.0,
                             "p_bh": 0.012 if significant else 0.8})
    return pd.DataFrame(rows, columns=BIAS_SHIFT_COLUMNS)


@pytest.fixture(scope="session")
def study2_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("study2")
    shift = bias_shift_rows()
    write_table(shift, out / "bias_shift.csv")
    write_table(shift, out / "bias_shift.parquet")
    write_table(pd.DataFrame([{"dataset": "chexpert", "reconstructor": "unet", "level": "xray_physical_3000", "task": "image",
                               "metric": "psnr", "baseline": 25.0, "reconstructed": 30.0, "delta": 5.0}]), out / "performance.csv")
    # tables and figures another branch may add later: picked up by name pattern only
    write_text(out / "table1.md", "# Table 1 — cohort (tiny)\n\n| Group | Patients |\n| --- | --- |\n| Female | 10 |\n| Male | 12 |\n")
    write_text(out / "table7.md", "# Table 7 — shifts\n\n| Metric | Delta |\n| --- | --- |\n| EOP | **+0.080 [0.030, 0.130]** |\n\nA note.\n")
    _png(out / "fig2_shift_by_level.png", "fig2")
    _png(out / "examples_unet.png", "examples")
    (out / "degraded_xray").mkdir()
    _png(out / "degraded_xray" / "img0.png", "an input image, not a figure")
    write_table(pd.DataFrame({"patient_id": ["p1"], "split": ["test"]}), out / "data" / "xray_split.parquet")
    write_json(out / "runs" / "clf001" / "run.json", {"run_id": "clf001", "kind": "train-classifier", "status": "done",
                                                      "seconds": 3.0, "device": "cpu", "attempts": [{"versions": {}}]})
    write_json(out / "study.json", {
        "study": "reconstruction",
        "config": {"name": "reconstruction", "releases": "/data/releases", "device": "cpu", "jobs": 1,
                   "split": {"fractions": [0.7, 0.1, 0.2], "reconstruction_share": 0.7, "seed": 0},
                   "xray": {"source": "chexpert", "labels": LABELS,
                            "degradation": {"mode": "physical", "photons": [3000.0], "size": 32, "seed": 0},
                            "classifier": {"model": "densenet121"}, "reconstructors": {"unet": {}, "pix2pix": {}}},
                   "analysis": {"attributes": ["sex"], "race_scheme": "table5", "threshold": "balanced",
                                "bootstrap": 50, "seed": 0, "level": 0.95}},
        "data": {"chexpert": {"split": str(out / "data" / "xray_split.parquet")}},
        "runs": {"chexpert": {"downstream/classifier": "clf001", "unet/xray_physical_3000": None}},
        "deviations": [{"setting": "LPIPS (Tables 7-8)", "paper": "LPIPS reported", "radfair": "not computed",
                        "why": "unavailable offline: its backbone weights cannot be obtained"},
                       {"setting": "xray.classifier.optim.lr", "paper": 0.001, "radfair": 0.002, "why": "user override"}],
        "warnings": ["unet/xray_physical_3000: sex=Female, label no_finding: no positives in test; TPR is NaN"],
        "timings": {"data_and_degradation_s": 3.0, "training_s": 40.0, "scoring_s": 2.0, "analysis_s": 1.0},
        "conventions": {"thresholds": "balanced on clean validation images, applied to clean and reconstructed test images",
                        "bootstrap": "50 paired patient-level replicates"}})
    return out


@pytest.fixture(scope="session")
def pages(audit_dir, study1_dir, study2_dir):
    return {"audit": audit_dir, "emb-vs-img": study1_dir, "reconstruction": study2_dir}

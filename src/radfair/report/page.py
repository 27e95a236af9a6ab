"""Collect a report page from a result folder: kind, findings, tables, figures, methods, warnings, provenance.

Everything on the page is read from the folder (tables, ``audit.json`` / ``study.json``, PNGs) at report
time; nothing is typed by hand. The three kinds:

* ``audit``: a folder written by ``radfair audit`` (``audit.json``);
* ``emb-vs-img``: Study 1, ``radfair study emb-vs-img`` (``study.json`` with ``"study": "emb-vs-img"``);
* ``reconstruction``: Study 2, ``radfair study reconstruction`` (``study.json`` with ``"study": "reconstruction"``).

Study pages pick up every ``table*.md`` and every ``*.png`` the run wrote (outside its run store and data
folders), so a new table or figure appears without a change here; its caption comes from
:mod:`.captions`.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import platform
import re
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import pandas as pd

from ..errors import RadfairInputError
from .captions import caption
from .findings import audit_findings, study1_findings, study2_findings
from .tables import Table, excludes_zero, frame_table, interval, parse_markdown_tables

KINDS = {"audit": "Fairness audit", "emb-vs-img": "Study 1 — embeddings vs images",
         "reconstruction": "Study 2 — reconstruction and downstream fairness"}
NOT_A_RESULT = ("{path}: not a radfair result folder; expected a folder written by `radfair audit` (audit.json) or "
                "`radfair study emb-vs-img|reconstruction` (study.json with \"study\": \"emb-vs-img\" or \"reconstruction\")")
#: Folders of a study that hold inputs and intermediate artefacts (thousands of images), not report figures.
SKIP_DIRS = {"runs", "data", "degraded_xray", "degraded_mri", "cache", "__pycache__"}
MAX_FIGURES = 200
PACKAGES = ("radfair", "numpy", "pandas", "scipy", "torch", "monai", "scikit-learn", "matplotlib", "pyarrow", "jinja2")
DATASET_NAMES = {"mimic": "MIMIC", "chexpert": "CXP", "all": "ALL"}


@dataclass
class Figure:
    path: str
    caption: str
    data_uri: str
    width: int = 0
    height: int = 0
    link: str = ""  # Markdown: the figure's path relative to the report file


@dataclass
class Page:
    kind: str
    title: str
    folder: str
    findings: list[str]
    findings_note: str
    tables: list[Table]
    figures: list[Figure]
    methods: list[tuple[str, str]]
    conventions: list[tuple[str, str]]
    config: list[tuple[str, str]]
    warnings: list[str]
    provenance: list[tuple[str, str]]
    checksums: list[tuple[str, str]]
    runs: list[dict] = field(default_factory=list)
    generated: str = ""
    top_figures: list[Figure] = field(default_factory=list)  # shown above the tables (the audit's story)
    top_note: str = ""
    deviations: list[dict] = field(default_factory=list)  # study.json / plan.json "deviations": setting, paper, radfair, why

    @property
    def warning_kinds(self) -> list[tuple[str, int]]:
        """(kind, count): a warning's text after its last ': ', numbers and parentheses blanked, most frequent first."""
        return warning_kinds(self.warnings)


def warning_kinds(messages: list[str]) -> list[tuple[str, int]]:
    counts: dict[str, int] = {}
    for message in messages:
        kind = re.sub(r"\([^)]*\)", "(...)", message.rsplit(": ", 1)[-1])
        kind = re.sub(r"\d+(\.\d+)?", "N", kind)
        counts[kind] = counts.get(kind, 0) + 1
    return sorted(counts.items(), key=lambda kv: -kv[1])


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RadfairInputError(f"{path}: cannot be read; expected the JSON a radfair run writes ({exc})") from None
    if not isinstance(data, dict):
        raise RadfairInputError(f"{path}: cannot be read; expected a JSON object")
    return data


def detect_kind(folder: str | Path) -> tuple[str, dict]:
    """``(kind, recorded json)`` of a result folder; anything else is a one-line input error."""
    folder = Path(folder)
    if not folder.exists():
        raise RadfairInputError(f"{folder}: folder not found (a result folder of `radfair audit` or `radfair study`)")
    if not folder.is_dir():
        raise RadfairInputError(NOT_A_RESULT.format(path=folder) + "; this is a file")
    if (folder / "study.json").is_file():
        record = _read_json(folder / "study.json")
        study = str(record.get("study", ""))
        if study in ("emb-vs-img", "reconstruction"):
            return study, record
        raise RadfairInputError(f"{folder / 'study.json'}: \"study\" is {study!r}; expected \"emb-vs-img\" or \"reconstruction\"")
    if (folder / "audit.json").is_file():
        return "audit", _read_json(folder / "audit.json")
    raise RadfairInputError(NOT_A_RESULT.format(path=folder))


#: Columns the findings read from each table (a table without them is one input error, never a traceback).
REQUIRED = {"disparities": ("label", "attribute", "group", "ci_low", "ci_high"),
            "summary": ("attribute", "average_gap", "average_gap_bc", "ci_low", "ci_high"),
            "comparison": ("label", "attribute", "metric", "value_a", "delta", "ci_low", "ci_high"),
            "fairness_summary": ("attribute", "dataset", "model", "average_gap", "ci_low", "ci_high", "n_seeds", "highest_label",
                                 "highest_gap", "unfavorable"),
            "bias_shift": ("label", "attribute", "metric", "baseline", "delta", "ci_low", "ci_high")}


def _table(folder: Path, stem: str) -> pd.DataFrame | None:
    for suffix in (".parquet", ".csv"):
        path = folder / f"{stem}{suffix}"
        if path.is_file():
            try:
                df = pd.read_parquet(path) if suffix == ".parquet" else pd.read_csv(path)
            except Exception as exc:  # noqa: BLE001 - any unreadable table is one input error
                raise RadfairInputError(f"{path}: cannot be read; expected the table the run wrote ({exc})") from None
            missing = [c for c in REQUIRED.get(stem, ()) if c not in df.columns]
            if missing:
                raise RadfairInputError(f"{path}: missing column(s) {missing}; expected the table the run wrote")
            return df
    return None


def _figures(folder: Path, kind: str, warnings: list[str]) -> list[Figure]:
    found = sorted(p for p in folder.rglob("*.png")
                   if not any(part in SKIP_DIRS or part.startswith(".") for part in p.relative_to(folder).parts[:-1])
                   and not p.name.startswith("."))
    if len(found) > MAX_FIGURES:
        warnings.append(f"{len(found)} figures found; the report shows the first {MAX_FIGURES}")
        found = found[:MAX_FIGURES]
    figures = []
    for path in found:
        data = path.read_bytes()
        width = height = 0
        if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
            width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
        else:
            warnings.append(f"{path.relative_to(folder)}: not a PNG image; not shown")
            continue
        figures.append(Figure(str(path.relative_to(folder)), caption(kind, path),
                              "data:image/png;base64," + base64.b64encode(data).decode("ascii"), width, height))
    return figures


def _markdown_tables(folder: Path, kind: str) -> list[Table]:
    tables = []
    for path in sorted(folder.glob("table*.md"), key=lambda p: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p.name)]):
        for table in parse_markdown_tables(path.read_text(), path.name):
            table.caption = caption(kind, path)
            tables.append(table)
    return tables


def _flatten(obj, prefix: str = "") -> list[tuple[str, str]]:
    if isinstance(obj, dict):
        out = []
        for k, v in obj.items():
            out += _flatten(v, f"{prefix}.{k}" if prefix else str(k))
        return out
    if isinstance(obj, list) and any(isinstance(v, dict | list) for v in obj):
        out = []
        for i, v in enumerate(obj):
            out += _flatten(v, f"{prefix}[{i}]")
        return out
    return [(prefix, json.dumps(obj) if not isinstance(obj, str) else obj)]


def _versions() -> list[tuple[str, str]]:
    out = [("python", platform.python_version())]
    for name in PACKAGES:
        try:
            out.append((name, metadata.version(name)))
        except metadata.PackageNotFoundError:
            continue
    return out


def _checksums(folder: Path, names: list[str]) -> list[tuple[str, str]]:
    from ..io import file_sha256

    return [(name, file_sha256(folder / name)) for name in names if (folder / name).is_file()]


def _small_groups(df: pd.DataFrame | None, count: str, threshold: int, extra: tuple[str, ...] = ()) -> list[str]:
    if df is None or df.empty or count not in df.columns:
        return []
    out = []
    keys = [k for k in (*extra, "attribute", "group") if k in df.columns]
    for key, part in df.groupby(keys, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        name = " · ".join(map(str, key[:-2])) + (": " if len(key) > 2 else "") + f"{key[-2]}={key[-1]}"
        empty = part[part[count] == 0]["label"].tolist()
        small = part[(part[count] > 0) & (part[count] < threshold)]["label"].tolist()
        if empty:
            out.append(f"{name}: no positives in test for {len(empty)} finding(s) ({', '.join(map(str, empty[:6]))}"
                       f"{', ...' if len(empty) > 6 else ''}); its TPR and disparity are n/a")
        if small:
            out.append(f"{name}: fewer than {threshold} positives in test for {len(small)} finding(s) "
                       f"({', '.join(map(str, small[:6]))}{', ...' if len(small) > 6 else ''}); intervals are wide")
    return out


# ---------------------------------------------------------------------------------------------- audit

#: The columns a wide audit table shows first (the rest behind "show all columns").
AUDIT_KEY_COLUMNS = {
    "summary": ("attribute", "average_gap", "average_gap_bc", "highest_label", "highest_gap", "unfavorable", "favorable",
                "missing_test_images"),
    "group_metrics": ("label", "attribute", "group", "n", "n_pos", "tpr", "fpr", "auc", "small_group"),
    "equalized_odds": ("label", "attribute", "eodd_worst", "eop", "eo_ratio", "eo_ratio_parity", "eop_ratio"),
    "performance": ("label", "auc", "tpr", "fpr", "selection_rate", "ece", "threshold"),
    "calibration": ("label", "attribute", "group", "n", "ece", "citl"),
    "demographic_parity": ("label", "attribute", "dp_difference", "dp_ratio", "dp_ratio_parity"),
}
AUDIT_TABLES = (
    ("summary", "Summary per attribute", "Average TPR-disparity gap over findings (No Finding excluded) with its max-t 95% interval "
     "and bias-corrected estimate; lowest/highest gap findings; groups most often (un)favoured."),
    ("gaps", "TPR-disparity gap per finding", "gap = max - min group disparity per finding and attribute, max-t projection interval; "
     "most (un)favourable group."),
    ("disparities", "TPR disparities per group", "TPR of the group minus the reference (binary: the other group; otherwise the "
     "median over groups), percentile bootstrap interval; small_group = fewer positives than the minimum group size."),
    ("equalized_odds", "Equalized odds", "EODD worst case = max(dTPR, dFPR), EODD mean = their mean, EOP = dTPR (max - min over "
     "groups), and the ratio forms eo_ratio = min(TPR ratio, FPR ratio), eop_ratio = TPR ratio (min/max; 1 = parity), max-t "
     "projection intervals."),
    ("group_metrics", "Group metrics", "Per finding, attribute and group: counts (tp, fn, fp, tn), TPR, FPR, TNR, PPV, FNR, NPV, "
     "FDR, FOR, AUROC and Brier score with percentile bootstrap intervals, average precision (point estimate)."),
    ("performance", "Overall performance", "The overall row per finding on the test split: AUROC, TPR, FPR, selection rate, ECE, "
     "Brier (percentile bootstrap intervals), average precision and the threshold."),
    ("demographic_parity", "Demographic parity", "Difference between the highest and lowest selection rate over groups and their "
     "ratio (min/max; parity when >= the parity ratio, 0.8 by default), max-t projection intervals."),
    ("selection_rates", "Selection rates", "P(score >= threshold) per group, percentile interval."),
    ("calibration_gap", "Calibration gap", "max - min expected calibration error over groups, max-t projection interval."),
    ("calibration", "Calibration per group", "Expected calibration error and calibration-in-the-large (mean p - mean y) per group."),
    ("comparison", "Paired comparison (B - A)", "Delta of each metric between the compared table (B) and the audited one (A) on "
     "the same patients; paired bootstrap interval, p-value, Holm and Benjamini-Hochberg adjusted p."),
    ("thresholds", "Thresholds", "Decision threshold per finding and the rule and split it was chosen on."),
    ("thresholds_compare", "Thresholds of the compared table", "Chosen by the same rule on the compared table's own rows."),
)


def _audit_page(folder: Path, record: dict, warnings: list[str]) -> dict:
    config = record.get("config", {})
    frames = {stem: _table(folder, stem) for stem, _, _ in AUDIT_TABLES}
    disparities = frames["disparities"]
    if disparities is None:
        raise RadfairInputError(f"{folder}: audit.json but no disparities.csv; expected every table `radfair audit` writes")
    findings = audit_findings(disparities, frames["summary"], frames["comparison"], frames["group_metrics"])
    tables = [frame_table(df, title, text, f"{stem}.csv", key_columns=AUDIT_KEY_COLUMNS.get(stem)) for (stem, title, text), df in
              zip(AUDIT_TABLES, frames.values(), strict=True) if df is not None]
    on_test = bool(config.get("threshold_on_test"))
    warnings += list(record.get("warnings", []))
    if on_test:
        warnings.insert(0, "thresholds were chosen on the test split (--threshold-on-test): every metric is optimistically biased")
    warnings += _small_groups(frames["group_metrics"], "n_pos", int(config.get("min_group_size", 10)))
    split_rule = "the test split (biased)" if on_test else "the validation split (split == 'val')"
    comparison = frames["comparison"] is not None
    methods = [
        ("Data", f"scored table {record.get('inputs', {}).get('scored', {}).get('path', 'n/a')}: {record.get('test_rows', 'n/a')} "
                 f"test images of {record.get('test_patients', 'n/a')} patients; findings {', '.join(record.get('labels', []))}"),
        ("Split", "no split column: every row is test" if any("no split column" in r for r in record.get("input_rules") or [])
                  else "metrics on the test split (split == 'test'); train rows are not used"),
        ("Attributes", ", ".join(config.get("attributes", []))),
        ("Thresholds", f"{record.get('threshold_source') or ('rule ' + str(config.get('threshold', 'n/a')) + ', chosen per finding on ' + split_rule)}; "
                       f"{record.get('conventions', {}).get('prediction', 'score >= threshold')}"),
        ("Input rules applied", "; ".join(record.get("input_rules") or []) or "none (the table was in the scored-table layout)"),
        ("Rows left out", "; ".join(f"{a}: {c['test_images']} of {c['test_images_total']} test images have no value"
                                    for a, c in (record.get("missing_attribute") or {}).items()) or "none"),
        ("Measures", "TPR disparity: binary attribute TPR_g - TPR_other, otherwise TPR_g - median TPR; gap = max - min "
                     "disparity. For a binary attribute the gap is 2 |dTPR| = 2 EOP (each group's disparity is measured "
                     "against the other, so the two disparities are +d and -d): a TPR difference of 0.10 shows as gap 0.20 and "
                     "EOP 0.10. For three or more groups the median cancels and gap = EOP. Under-diagnosis: FPR of No "
                     "Finding (sick patients called healthy; Seyyed-Kalantari et al. 2021) and FNR per finding."),
        ("Bootstrap", f"{config.get('bootstrap', 'n/a')} replicates, unit: patient (all of a patient's images follow), seed "
                      f"{config.get('seed', 'n/a')}, {100 * float(config.get('level', 0.95)):g}% intervals"),
        ("Summary", f"average gap excludes {', '.join(config.get('summary_exclude', [])) or 'nothing'}; groups with fewer than "
                    f"{config.get('min_group_size', 'n/a')} positives are flagged small"),
        ("Multiple testing", record.get("conventions", {}).get("multiple_testing", "n/a") if comparison else
         "no p-values (no --compare table); intervals are per quantity, max-t simultaneous for max - min statistics"),
    ]
    inputs = record.get("inputs", {}) or {}
    checksums = [(f"{k}: {v.get('path')}", v.get("sha256") or "n/a") for k, v in inputs.items() if v]
    provenance = [("recorded radfair", str(record.get("radfair_version", "n/a")))]
    provenance += [(f"recorded {k}", str(v)) for k, v in (record.get("versions") or {}).items()]
    provenance += [("seed", str(config.get("seed", "n/a"))), ("device", "cpu (the audit runs on numpy)")]
    return {"findings": findings, "tables": tables, "methods": methods, "checksums": checksums, "provenance": provenance,
            "findings_note": "Per group: findings whose TPR-disparity 95% percentile bootstrap interval excludes 0; "
                             "per attribute: average gaps whose max-t interval excludes 0."}


# ---------------------------------------------------------------------------------------------- studies

def _runs(folder: Path, record: dict) -> list[dict]:
    runs = record.get("runs", [])
    if isinstance(runs, dict):  # {name: run_id} or nested {dataset: {name: run_id}}
        items = [(name, run_id, None) for name, run_id in _flatten(runs) if run_id and run_id != "null"]
    else:  # Study 1: one entry per (dataset, arm, seed); the seeds of an ensemble run share its run id
        items = [(r.get("label") or f"{r.get('dataset')}-{r.get('arm')}-seed{r.get('seed')}", r.get("run_id"), r.get("seed")) for r in runs]
    out = []
    for name, run_id, entry_seed in items:
        if not run_id:
            continue
        path = folder / "runs" / str(run_id) / "run.json"
        row = {"name": name, "run_id": run_id, "status": "n/a", "seconds": None, "device": "", "seed": None, "versions": {}}
        if path.is_file():
            try:
                run = json.loads(path.read_text())
            except (OSError, json.JSONDecodeError):
                run = {}
            attempts = run.get("attempts") or [{}]
            row.update(status=run.get("status", "n/a"), seconds=run.get("seconds"), device=run.get("device") or attempts[-1].get("device", ""),
                       seed=entry_seed if entry_seed is not None else run.get("seed", run.get("config", {}).get("seed")),
                       versions=attempts[-1].get("versions", {}))
        out.append(row)
    return out


def _study_common(folder: Path, record: dict, warnings: list[str]) -> tuple[list, list]:
    warnings += [str(w) for w in record.get("warnings", [])]
    timings = record.get("timings", {}) or {}
    provenance = [(f"timing {k}", f"{v:.1f}" if isinstance(v, float) else str(v)) for k, v in timings.items()]
    provenance.append(("device", str(record.get("config", {}).get("device", "n/a"))))
    names = sorted(p.name for p in folder.iterdir()
                   if p.is_file() and p.suffix in (".json", ".csv", ".md", ".png") and not p.name.startswith("report."))
    from ..io import file_sha256

    splits = [(key, path) for key, path in _flatten(record.get("data", {}) or {})
              if "split" in key and isinstance(path, str) and path.endswith((".parquet", ".csv"))]
    inputs = [(f"input {key}: {path}", file_sha256(path)) for key, path in splits if Path(path).is_file()]
    return provenance, inputs + _checksums(folder, names)


def _study1_page(folder: Path, record: dict, warnings: list[str]) -> dict:
    config = record.get("config", {})
    disparities, summary = _table(folder, "disparities"), _table(folder, "fairness_summary")
    if disparities is None or summary is None:
        raise RadfairInputError(f"{folder}: study.json but no disparities.csv / fairness_summary.csv; expected the outputs of "
                                "`radfair study emb-vs-img`")
    comparison = _table(folder, "arm_comparison")
    findings = study1_findings(disparities, summary, DATASET_NAMES, comparison)
    tables = _markdown_tables(folder, "emb-vs-img")
    both = "95% interval carrying seed and test-set sampling variance (patients and seeds resampled together)"
    for stem, title, text in (
        ("arm_comparison", "Paired arm comparison", "Per dataset, attribute, finding (and group): the two arms' values, their "
         "difference on the same patient resamples with a normal 95% interval, two-sided p-value, and Holm / Benjamini-Hochberg "
         "adjusted p within each metric."),
        ("fairness_summary", "Fairness summary (Table 4 data)", f"Average gap per attribute, dataset and arm with a max-t {both}, "
         "and the bias-corrected estimate."),
        ("disparities", "TPR disparities per group (seed means)", "Seed-mean TPR disparity per dataset, arm, attribute, finding and "
         f"group with a percentile {both}; n_pos = positives in test."),
        ("auc", "AUROC (Table 3 data)", f"Mean test AUROC over seeds with a percentile {both}."),
        ("cost", "Compute cost", "Counted FLOPs/MACs per arm, measured training speed and seconds per run; ratio rows img/emb."),
    ):
        df = _table(folder, stem)
        if df is not None:
            tables.append(frame_table(df, title, text, f"{stem}.csv"))
    warnings += _small_groups(disparities, "n_pos", 10, extra=("dataset", "model"))
    dropped = (record.get("data", {}) or {}).get("dropped_without_embedding", {}) or {}
    for source, n in dropped.items():
        if n:
            warnings.append(f"{source}: {n} images without an embedding were dropped from both arms")
    split = config.get("split", {})
    arms = config.get("arms", {})
    counts = (record.get("data", {}) or {}).get("counts", {})
    methods = [
        ("Data", f"releases {config.get('releases', 'n/a')}; embeddings {config.get('embeddings') or 'in the releases folder'}; "
                 f"datasets {', '.join(config.get('datasets', []))}; uncertain labels -> {config.get('uncertain', 'n/a')}; "
                 f"rows without an embedding: {config.get('missing_embeddings', 'n/a')}"),
        ("Split", f"patient-level train/val/test {split.get('fractions')} (seed {split.get('seed')}), one saved split per dataset "
                  "shared by every arm and seed; " + "; ".join(f"{d}: " + ", ".join(f"{s} {n}" for s, n in c.get('patients', {}).items())
                                                               + " patients" for d, c in counts.items())),
        ("Arms", "; ".join(f"{name}: {a.get('model')} (image size {a.get('image_size')}, up to {a.get('loop', {}).get('epochs')} "
                           f"epochs, patience {a.get('loop', {}).get('patience')})" for name, a in arms.items())),
        ("Seeds", ", ".join(map(str, config.get("seeds", [])))),
        ("Thresholds", f"rule {config.get('threshold')}, chosen per finding and run on that run's validation rows; applied to test"),
        ("Intervals", (record.get("conventions", {}) or {}).get("intervals") or
         f"mean over {len(config.get('seeds', []))} seeds with Student-t {100 * float(config.get('level', 0.95)):g}% intervals"),
        ("Conventions", "; ".join(str((record.get("conventions", {}) or {}).get(k, "")) for k in ("averaging", "counting"))),
        ("Attributes", f"{', '.join(config.get('attributes', []))}; average gap excludes {', '.join(config.get('summary_exclude', []))}"),
        ("Multiple testing", (record.get("conventions", {}) or {}).get("arm_comparison", "none: the study reports intervals, not p-values")
         + ("; " + ", ".join(f"{m}: {v['significant_holm']} of {v['size']} significant after Holm"
                             for m, v in (record.get("multiple_testing") or {}).items()) if record.get("multiple_testing") else "")),
    ]
    provenance, checksums = _study_common(folder, record, warnings)
    provenance.insert(0, ("seeds", ", ".join(map(str, config.get("seeds", [])))))
    return {"findings": findings, "tables": tables, "methods": methods, "provenance": provenance, "checksums": checksums,
            "findings_note": "Paired arm differences significant after Holm; then average gaps and group TPR disparities whose "
                             "95% interval (seeds and test sampling) excludes 0."}


def _study2_page(folder: Path, record: dict, warnings: list[str]) -> dict:
    config = record.get("config", {})
    shift = _table(folder, "bias_shift")
    if shift is None:
        warnings.append("no bias_shift.csv in the folder: no fairness shift to report (an unfinished or MRI-only run?)")
        shift = pd.DataFrame(columns=list(REQUIRED["bias_shift"]) + ["p_value"])
    findings = study2_findings(shift)
    tables = _markdown_tables(folder, "reconstruction")
    for stem, title, text in (
        ("bias_shift", "Fairness shift (reconstructed − clean)", "Per dataset, reconstructor, level, finding and attribute: the "
         "fairness metric on clean and on reconstructed test images, their difference with a paired patient-bootstrap 95% "
         "interval, p-value, and Holm / Benjamini-Hochberg adjusted p within the confirmatory family (column family; "
         "BH only for the exploratory rows)."),
        ("performance", "Performance", "AUROC clean vs reconstructed per finding (paired interval), and mean PSNR/SSIM of the "
         "degraded input (baseline) and of the reconstruction."),
        ("mitigation_vs_standard", "Mitigation against the same-budget fine-tune (primary) and the original reconstruction",
         "Per strategy, finding and attribute: the fairness metric on the reference reconstruction (baseline: the standard "
         "fine-tune with the same epochs for comparison = primary, so the strategy's effect is not confounded with the extra "
         "training; the original reconstructor for secondary) and on the mitigated one, the paired patient-bootstrap 95% "
         "interval of the difference, p-value, and Holm / Benjamini-Hochberg adjusted p within each comparison."),
        ("mitigation_sweep", "λ sweep on validation", "Every fine-tuning run of the sweep with its validation PSNR, mean AUROC "
         "and EODD (CheXpert, classifier downstream) or mean Dice and ΔDice (UCSF-PDGM, segmenter downstream), the λ "
         "chosen per strategy and why (rule or flagged fallback)."),
    ):
        df = _table(folder, stem)
        if df is not None:
            tables.append(frame_table(df, title, text, f"{stem}.csv"))
    xray = config.get("xray") or {}
    deg = xray.get("degradation", {})
    analysis = config.get("analysis", {})
    split = config.get("split", {})
    n_sig = int(sum(excludes_zero(lo, hi) for lo, hi in zip(shift["ci_low"], shift["ci_high"], strict=True)))
    methods = [
        ("Data", f"releases {config.get('releases', 'n/a')}; X-ray source {xray.get('source', 'n/a')}; findings "
                 f"{', '.join(xray.get('labels', []))}"),
        ("Split", f"patient-level train/val/test {split.get('fractions')} (seed {split.get('seed')}); train patients split "
                  f"{split.get('reconstruction_share')} / rest into reconstructor / classifier training"),
        ("Degradation", f"{deg.get('mode')} mode, photon counts {deg.get('photons')}, size {deg.get('size')} px, seed {deg.get('seed')}"),
        ("Reconstructors", ", ".join(xray.get("reconstructors", {}) or [])),
        ("Classifier", f"{xray.get('classifier', {}).get('model')} trained on clean images of the classifier patients, frozen"),
        ("Thresholds", record.get("conventions", {}).get("thresholds", f"{analysis.get('threshold')} on clean validation images")),
        ("Bootstrap", f"{analysis.get('bootstrap')} paired replicates, unit: patient, seed {analysis.get('seed')}, "
                      f"{100 * float(analysis.get('level', 0.95)):g}% percentile intervals"),
        ("Attributes", ", ".join(analysis.get("attributes", [])) + (f" (race scheme {analysis['race_scheme']}; race_merged: its "
                                                                     "merged variant, exploratory, Figures 18-19)"
                                                                     if analysis.get("race_scheme") else "")),
        ("MRI part", "; ".join(f"{k}: {json.dumps(v)}" for k, v in (config.get("mri") or {}).items()
                               if not isinstance(v, dict)) or ("configured (see the recorded configuration)" if config.get("mri") else "none")),
        ("Multiple testing", f"{record.get('conventions', {}).get('multiple_testing') or 'Holm (FWER) and Benjamini-Hochberg (FDR) over the grid'} "
                             f"({int(shift.get('p_value', shift['delta']).notna().sum())} rows of bias_shift.csv with a p-value; "
                             f"{n_sig} with an interval excluding 0)"),
    ]
    mt = record.get("multiple_testing")
    if mt:
        methods.append(("Confirmatory family", f"{mt['family']}: {mt['size']} tests; p-values {mt['p_value_method']} "
                        f"({mt['p_value_method_text']}; smallest reportable p {mt['p_value_floor']:.3g}); "
                        f"{mt['confirmatory_significant_holm']} significant after Holm and {mt['confirmatory_significant_bh']} "
                        f"after Benjamini-Hochberg at alpha {mt['alpha']}; the paper's unadjusted count (p < {mt['alpha']}): "
                        + ", ".join(f"{k} {v}" for k, v in mt["unadjusted_p_below_alpha"].items())))
    provenance, checksums = _study_common(folder, record, warnings)
    provenance.insert(0, ("seeds", f"split {split.get('seed')}, degradation {deg.get('seed')}, analysis {analysis.get('seed')}"))
    return {"findings": findings, "tables": tables, "methods": methods, "provenance": provenance, "checksums": checksums,
            "findings_note": "Shifts (reconstructed − clean) whose paired bootstrap 95% interval excludes 0, grouped by "
                             "dataset, reconstructor, level (and mitigation), attribute and metric: count, and the largest with "
                             "its Holm-adjusted p; groups with a Holm-significant shift first."}


def _deviations(folder: Path, record: dict) -> list[dict]:
    """The study's departures from the paper: study.json's ``deviations``, else a ``plan.json`` beside it."""
    listed = record.get("deviations")
    if listed is None and (folder / "plan.json").is_file():
        listed = _read_json(folder / "plan.json").get("deviations")
    return [{k: d.get(k) if isinstance(d.get(k), str) else json.dumps(d.get(k)) for k in ("setting", "paper", "radfair", "why")}
            for d in listed or []]


def build_page(folder: str | Path) -> Page:
    """Read a result folder into a :class:`Page` (one input error if it is not one)."""
    folder = Path(folder)
    kind, record = detect_kind(folder)
    warnings: list[str] = []
    builder = {"audit": _audit_page, "emb-vs-img": _study1_page, "reconstruction": _study2_page}[kind]
    parts = builder(folder, record, warnings)
    figures = _figures(folder, kind, warnings)
    story = {"audit": ("forest_", "roc_"), "emb-vs-img": ("fig1_",), "reconstruction": ("fig2_", "fig3_", "fig4_", "fig5_")}[kind]
    top = [f for f in figures if Path(f.path).name.startswith(story)]
    figures = [f for f in figures if f not in top]
    runs = _runs(folder, record) if kind != "audit" else []
    recorded = next((r["versions"] for r in runs if r["versions"]), {})
    provenance = parts["provenance"] + [(f"recorded {k} (run store)", str(v)) for k, v in recorded.items()]
    provenance += [(f"{k} at report time", v) for k, v in _versions()]
    conventions = [(k, v if isinstance(v, str) else json.dumps(v)) for k, v in (record.get("conventions") or {}).items()]
    name = record.get("config", {}).get("name")
    title = KINDS[kind] + (f": {name}" if name and name not in KINDS else "")
    return Page(kind=kind, title=title, folder=str(folder.resolve()), findings=parts["findings"], findings_note=parts["findings_note"],
                tables=parts["tables"], figures=figures, methods=parts["methods"], conventions=conventions,
                config=_flatten(record.get("config", {})), warnings=list(dict.fromkeys(warnings)), provenance=provenance,
                checksums=parts["checksums"], runs=runs, deviations=_deviations(folder, record),
                generated=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), top_figures=top,
                top_note=({"audit": "Per finding and attribute: who is under-served and how sure that is (forest plots of TPR "
                                    "and FPR by group with 95% patient-bootstrap intervals), and whether a gap comes from the "
                                    "threshold or from the ranking (per-group ROC curves; X marks each group's operating point "
                                    "at the shared threshold: points apart on one curve = threshold effect; curves apart = "
                                    "ranking effect).",
                           "emb-vs-img": "Figure 1 of the paper per dataset, arm and attribute: each group's TPR disparity per "
                                         "finding with its interval over seeds and test patients.",
                           "reconstruction": "The paper's Figures 2-5: performance against noise, the distribution of bias "
                                             "changes, and each reconstructor's fairness shift per finding and attribute "
                                             "(marks: significant after Holm in the confirmatory family)."}[kind]
                          if top else ""))


__all__ = ["KINDS", "Page", "build_page", "detect_kind", "interval"]

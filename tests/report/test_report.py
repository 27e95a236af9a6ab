"""radfair report: folder kinds, findings sentences, tables, self-contained HTML, Markdown, CLI errors."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest
from typer.testing import CliRunner

from radfair.cli import app
from radfair.errors import RadfairInputError
from radfair.report import build_page, detect_kind, render_html, render_markdown
from radfair.report.captions import GENERIC_FIGURE, caption
from radfair.report.findings import audit_findings, disparity_findings, none_sentence, study2_findings
from radfair.report.tables import frame_table, parse_markdown_tables

runner = CliRunner()


def disparities(rows):
    return pd.DataFrame(rows, columns=["label", "attribute", "group", "tpr_disparity", "ci_low", "ci_high"])


def test_a_finding_states_its_number_and_interval_only_when_the_interval_excludes_zero():
    df = disparities([
        ("pleural_effusion", "sex", "Female", -0.12, -0.18, -0.06),
        ("edema", "sex", "Female", -0.05, -0.09, -0.01),
        ("atelectasis", "sex", "Female", -0.30, -0.70, 0.10),  # includes 0: never a finding
        ("pleural_effusion", "sex", "Male", 0.12, 0.06, 0.18),
        ("edema", "sex", "Male", 0.05, 0.01, 0.09),
        ("atelectasis", "sex", "Male", 0.30, -0.10, 0.70),
    ])
    lines = disparity_findings(df)
    assert lines == ["Female patients (sex): lower TPR in 2 of 3 findings; largest gap pleural effusion "
                     "\u22120.120 [\u22120.180, \u22120.060]"]  # binary attribute: the mirror sentence is not repeated
    assert "atelectasis" not in " ".join(lines)


def test_no_interval_excluding_zero_is_said_in_words():
    df = disparities([("edema", "sex", "Female", -0.05, -0.2, 0.1), ("edema", "sex", "Male", 0.05, -0.1, 0.2)])
    assert audit_findings(df) == [none_sentence("TPR disparity, gap or comparison")]
    shift = pd.DataFrame([{"reconstructor": "unet", "level": "l", "label": "edema", "attribute": "sex", "metric": "eop",
                           "baseline": 0.1, "delta": 0.02, "ci_low": -0.01, "ci_high": 0.05, "p_holm": 1.0}])
    assert study2_findings(shift)[0].startswith("No fairness shift")


def test_study2_findings_group_rows_with_a_count_the_largest_and_holm_p():
    from tests.report.conftest import bias_shift_rows

    lines = study2_findings(bias_shift_rows())
    assert lines == ["1 of 12 shifts have a 95% interval that excludes 0, 1 significant after Holm over the grid.",
                     "chexpert, unet, xray_physical_3000 — EOP (TPR gap) by sex: rose in 1 of 3 findings (1 significant after Holm); "
                     "largest edema +0.080 [0.030, 0.130] (from 0.100), p_Holm = 0.012"]
    mitigated = bias_shift_rows().assign(mitigation="none")
    assert study2_findings(mitigated)[1].startswith("chexpert, unet, xray_physical_3000, none — EOP")


def test_folder_kinds_and_one_line_errors(pages, tmp_path):
    for kind, folder in pages.items():
        assert detect_kind(folder)[0] == kind
    with pytest.raises(RadfairInputError, match="not a radfair result folder; expected a folder written by `radfair audit`"):
        detect_kind(tmp_path)
    (tmp_path / "study.json").write_text(json.dumps({"study": "other"}))
    with pytest.raises(RadfairInputError, match="expected \"emb-vs-img\" or \"reconstruction\""):
        detect_kind(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    r = runner.invoke(app, ["report", str(empty)])
    assert r.exit_code == 2
    assert r.stderr.count("\n") == 1 and r.stderr.startswith(f"error: {empty}: not a radfair result folder")
    assert "Traceback" not in r.output
    r = runner.invoke(app, ["report", str(pages["audit"]), "--format", "pdf"])
    assert r.exit_code == 2 and "--format: 'pdf' is not valid; expected html or md" in r.stderr


def test_interval_columns_are_merged_marked_and_sortable():
    df = pd.DataFrame({"label": ["a", "b"], "delta": [-0.2, 0.1], "ci_low": [-0.3, -0.1], "ci_high": [-0.1, 0.3],
                       "p_holm": [0.01, 0.9]})
    t = frame_table(df, "T", "c", "x.csv")
    assert t.header == ["label", "delta [95% CI]", "p_holm"]
    assert t.rows[0][1].text == "\u22120.200 [\u22120.300, \u22120.100] *" and t.rows[0][1].sort == -0.2
    assert t.rows[1][1].text == "0.100 [\u22120.100, 0.300]"
    assert t.rows[0][2].text == "0.01 †" and t.rows[1][2].text == "0.9"


def test_written_markdown_tables_are_parsed_generically():
    text = "# Table 9 — new\n\n| A | B \\| C |\n| --- | --- |\n| x | **0.5 [0.1, 0.9]** |\n\nnote line\n"
    (t,) = parse_markdown_tables(text, "table9.md")
    assert t.title == "Table 9 — new" and t.header == ["A", "B | C"] and t.notes == ["note line"]
    assert t.rows[0][1].text == "0.5 [0.1, 0.9]" and t.rows[0][1].strong and t.rows[0][1].sort == 0.5


def test_captions_come_from_the_registry_with_a_generic_fallback():
    assert "marker area proportional to the group's share of positives" in caption("emb-vs-img", "fig1_mimic_emb_sex.png")
    assert "dashed diagonal" in caption("audit", "reliability_sex.png")
    assert caption("reconstruction", "zzz.png") == GENERIC_FIGURE.format(name="zzz.png")


def test_audit_page_has_every_section(audit_dir):
    page = build_page(audit_dir)
    assert page.kind == "audit"
    assert any(f.startswith("Female patients (sex): lower TPR in") for f in page.findings)
    assert {t.source for t in page.tables} >= {"summary.csv", "gaps.csv", "disparities.csv", "equalized_odds.csv", "group_metrics.csv"}
    assert {f.path for f in page.figures} == {"reliability_sex.png", "reliability_race.png"}
    assert any("Native" in w for w in page.warnings)  # empty groups listed in audit.json
    methods = dict(page.methods)
    assert "patient" in methods["Bootstrap"] and "40 replicates" in methods["Bootstrap"] and "validation" in methods["Thresholds"]
    assert dict(page.conventions)["eodd_worst"].startswith("max(dTPR, dFPR)")
    assert any(k.startswith("scored:") and len(v) == 64 for k, v in page.checksums)
    keys = [k for k, _ in page.provenance]
    assert "recorded radfair" in keys and "numpy at report time" in keys


def test_study_pages_pick_up_tables_figures_and_records(study1_dir, study2_dir):
    p1 = build_page(study1_dir)
    assert [t.source for t in p1.tables][:2] == ["table3.md", "table4.md"]
    assert [f.path for f in p1.figures + p1.top_figures] == ["fig1_mimic_emb_sex.png"]  # nothing from runs/
    assert [f.path for f in p1.top_figures] == ["fig1_mimic_emb_sex.png"]  # Figure 1 opens the page
    assert any("MIMIC · emb · sex: average gap 0.200 [0.150, 0.250] over 3 seeds" in f for f in p1.findings)
    assert not any("pleural effusion" in f and "largest gap pleural" in f for f in p1.findings)
    assert any("4 images without an embedding" in w for w in p1.warnings)
    assert any("80+" in w for w in p1.warnings)
    assert p1.runs[0]["seconds"] == 12.5 and ("recorded torch (run store)", "2.13.0+cpu") in p1.provenance
    p2 = build_page(study2_dir)
    assert [t.source for t in p2.tables] == ["table1.md", "table7.md", "bias_shift.csv", "performance.csv"]
    assert sorted(f.path for f in p2.figures + p2.top_figures) == ["examples_unet.png", "fig2_shift_by_level.png"]
    assert [f.path for f in p2.top_figures] == ["fig2_shift_by_level.png"]
    assert "Holm" in dict(p2.methods)["Multiple testing"]
    assert ("timing training_s", "40.0") in p2.provenance
    assert ("no positives in test; TPR is NaN", 1) in p2.warning_kinds
    assert [(r["name"], r["status"], r["seconds"]) for r in p2.runs] == [("chexpert.downstream/classifier", "done", 3.0)]
    assert any(k.startswith("input chexpert.split:") and len(v) == 64 for k, v in p2.checksums)


def test_html_is_self_contained(pages, tmp_path):
    for kind, folder in pages.items():
        out = tmp_path / f"{kind}.html"
        r = runner.invoke(app, ["report", str(folder), "--out", str(out)])
        assert r.exit_code == 0, r.output
        html = out.read_text()
        assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html, re.I)
        assert "http://" not in html and "https://" not in html
        page = build_page(folder)
        assert html.count("<img ") == len(page.figures) + len(page.top_figures) > 0
        assert all(src.startswith("data:image/png;base64,") for src in re.findall(r'<img src="([^"]+)"', html))
        assert "@media print" in html and "<script>" in html


def test_markdown_report_links_figures_relatively(study2_dir, tmp_path):
    page = build_page(study2_dir)
    md = render_markdown(page, tmp_path / "sub" / "r.md")
    assert "![fig2_shift_by_level.png](" in md and "data:image" not in md
    link = re.search(r"!\[fig2_shift_by_level.png\]\(([^)]+)\)", md).group(1)
    assert (tmp_path / "sub" / link).resolve() == (study2_dir / "fig2_shift_by_level.png").resolve()
    assert "| Group | Patients |" in md and "## Findings" in md and "## Provenance" in md
    assert "### Deviations from the paper" in md and "`xray.classifier.optim.lr`: paper 0.001; radfair 0.002 (user override)" in md
    assert "LPIPS (Tables 7-8)" in render_html(page)
    r = runner.invoke(app, ["report", str(study2_dir), "--format", "md"])
    assert r.exit_code == 0 and (study2_dir / "report.md").is_file()
    assert "<html" in render_html(page)


def test_a_table_without_the_expected_columns_is_a_one_line_error(audit_dir, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(audit_dir, broken)
    (broken / "disparities.parquet").unlink()
    (broken / "disparities.csv").write_text("label,attribute\nedema,sex\n")
    r = runner.invoke(app, ["report", str(broken)])
    assert r.exit_code == 2 and r.stderr.startswith(f"error: {broken / 'disparities.csv'}: missing column(s)")
    assert r.stderr.count("\n") == 1


def test_a_new_study2_figure_gets_its_number_in_the_caption_and_a_missing_shift_table_is_a_warning(tmp_path):
    assert caption("reconstruction", "fig12_psnr_vs_gap.png").startswith("Figure 12 of the study run (psnr vs gap)")
    (tmp_path / "study.json").write_text(json.dumps({"study": "reconstruction", "config": {}}))
    page = build_page(tmp_path)
    assert page.findings[0].startswith("No fairness shift") and any("no bias_shift.csv" in w for w in page.warnings)


def test_study2_tables_5_6_and_figures_18_19_keep_the_papers_numbers(study2_dir, tmp_path):
    """Tables 5-6 as the study writes them (subgroup_table) and Figures 18-19 are found by name, in the paper's order."""
    import shutil

    from radfair.io import write_text
    from radfair.studies.reconstruction.tables import subgroup_table

    from .conftest import _png

    folder = tmp_path / "study2"
    shutil.copytree(study2_dir, folder)
    split = pd.DataFrame({"patient_id": ["p1", "p2", "p3"], "split": ["train", "val", "test"], "sex": ["Female", "Male", "Male"],
                          "age_binary": ["<=62", ">62", ">62"], "race": ["AI/AN", "White", None]})
    write_text(folder / "table5_subgroups_chexpert.md", "# Table 5\n\n" + subgroup_table(split, ["sex", "age_binary"], "race", "chexpert"))
    write_text(folder / "table6_subgroups_ucsf.md", "# Table 6\n\n" + subgroup_table(split, ["age_binary"], "sex", "ucsf-pdgm"))
    _png(folder / "fig18_bias_change_hist_race_merged.png", "fig18")
    _png(folder / "fig19_bias_change_chexpert_race_merged_eodd_worst.png", "fig19")
    page = build_page(folder)
    sources = [t.source for t in page.tables]
    assert sources[:4] == ["table1.md", "table5_subgroups_chexpert.md", "table6_subgroups_ucsf.md", "table7.md"]
    assert page.tables[1].caption.startswith("Table 5 (subgroups chexpert)") and page.tables[2].caption.startswith("Table 6")
    captions = {f.path: f.caption for f in page.figures}
    assert captions["fig18_bias_change_hist_race_merged.png"].startswith("Figure 18")
    assert captions["fig19_bias_change_chexpert_race_merged_eodd_worst.png"].startswith("Figure 19")
    assert "race scheme table5" in dict(page.methods)["Attributes"]

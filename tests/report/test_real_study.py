"""The report of a real (tiny) Study 1 run: the page reads what ``run_study`` writes, not only the fixtures' copy."""

from __future__ import annotations

import pytest

from radfair.report import build_page, render_html


@pytest.mark.slow
def test_report_of_a_tiny_real_study1_run(tmp_path, synth_root):
    from radfair.studies.emb_vs_img import EmbVsImgConfig, run_study

    root, _ = synth_root
    config = EmbVsImgConfig(
        releases=str(root), datasets=["mimic"], seeds=[0, 1], labels=["edema", "pleural_effusion", "no_finding"],
        split={"fractions": (0.3, 0.2, 0.5), "seed": 0}, attributes=["sex", "race"],
        arms={"emb": {"model": "mlp", "hidden": [16], "optim": {"lr": 3e-3}, "loop": {"epochs": 2, "patience": None}}})
    run_study(config, tmp_path / "s1", progress=False, log=lambda m: None)
    page = build_page(tmp_path / "s1")
    assert page.kind == "emb-vs-img" and page.findings
    assert [t.source for t in page.tables][:4] == ["table1.md", "table2.md", "table3.md", "table4.md"]  # the paper's numbering
    assert {f.path for f in page.figures + page.top_figures} == {"fig1_mimic_emb_sex.png", "fig1_mimic_emb_race.png"}
    assert len(page.runs) == 2 and all(r["status"] == "done" and r["seconds"] is not None for r in page.runs)
    assert any(k == "recorded torch (run store)" for k, _ in page.provenance)
    html = render_html(page)
    assert "https://" not in html and html.count("<img ") == 2


@pytest.mark.slow
def test_report_of_a_tiny_real_study2_run(tmp_path, synth_root):
    from radfair.studies.reconstruction import ReconstructionConfig, run_study
    from tests.studies.test_reconstruction import NARROW

    root, _ = synth_root
    config = ReconstructionConfig(
        releases=str(root),
        xray={"labels": ["pleural_effusion", "edema"], "degradation": {"photons": [3000], "size": 32},
              "classifier": {"batch_size": 32, "optim": {"lr": 1e-3}, "loop": {"epochs": 1, "patience": None}},
              "reconstructors": {"unet": {"kind": "unet", **NARROW}},
              "training": {"batch_size": 16, "loop": {"epochs": 1, "patience": None}}},
        mri=None, analysis={"bootstrap": 20, "attributes": ["sex"]})
    run_study(config, tmp_path / "s2", progress=False, log=lambda m: None)
    page = build_page(tmp_path / "s2")
    assert page.kind == "reconstruction" and page.findings
    assert "bias_shift.csv" in [t.source for t in page.tables]
    assert not any(f.path.startswith("degraded_xray") for f in page.figures + page.top_figures)  # inputs are not figures
    assert "Holm" in dict(page.methods)["Multiple testing"]
    assert "https://" not in render_html(page)

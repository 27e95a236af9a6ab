import json

from radfair.demo import run_demo


def test_demo_runs_end_to_end_on_a_small_population(tmp_path):
    timings = run_demo(tmp_path / "demo", patients=120, bootstrap=20)
    assert set(timings) == {"synth_s", "cohorts_s", "probe_audit_s", "degrade_s"}
    for name in ("split_all.parquet", "audit_probe_all/summary.csv", "degraded_xray/degraded.parquet", "degraded_mri/quality_summary.csv"):
        assert (tmp_path / "demo" / name).is_file(), name
    audit = json.loads((tmp_path / "demo/audit_probe_all/audit.json").read_text())
    assert audit["config"]["bootstrap"] == 20

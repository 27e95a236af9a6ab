"""The studies' tests under the null and with a planted effect (radfair.studies.null_simulations; docs/intervals.md)."""

import pytest

from radfair.studies.null_simulations import study1_null, study2_null


@pytest.mark.slow
def test_study2_confirmatory_family_keeps_the_family_wise_error():
    # 200 simulated studies of a 36-test confirmatory family whose reconstructed scores differ from the clean
    # ones only by noise: Holm within the family declares a finding in at most 5% of them
    result = study2_null(200, n_patients=1200, bootstrap=150, baseline=0.1, seed=11)
    assert result["family_size"] == 36
    assert result["fwer_holm"] <= 0.05


@pytest.mark.slow
def test_study2_planted_shift_is_found_and_the_null_rows_stay_quiet():
    result = study2_null(30, n_patients=4000, bootstrap=150, baseline=0.1, planted=0.15, seed=12)
    assert result["power_holm"] >= 0.5
    assert result["fwer_on_null_rows"] <= 0.1


@pytest.mark.slow
def test_study1_arm_comparison_null_rate_and_combined_coverage():
    result = study1_null(150, n_patients=1200, bootstrap=150, seed=13)
    assert result["arm_declared_different_rate"] <= 0.05
    assert result["coverage_disparity_combined"] >= 0.90
    assert result["coverage_gap_combined"] >= 0.90

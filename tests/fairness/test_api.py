"""radfair.fairness.audit: arrays in, the CLI's tables out; its docstring example runs as a doctest."""

import doctest

import numpy as np
import pandas as pd
import pytest

import radfair.fairness._api as api_module
from radfair.data.synthetic.scored import simulate_scored
from radfair.errors import RadfairInputError
from radfair.fairness import AuditConfig, AuditResult, audit, run_audit


def test_docstring_example_runs():
    failures, tried = doctest.testmod(api_module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert tried >= 5 and failures == 0


def test_arrays_give_the_same_tables_as_the_scored_table_path():
    df = simulate_scored(500, labels=["edema", "pleural_effusion"], seed=2, effects={("race", "Black"): -1.0})
    result = audit(df[["y_edema", "y_pleural_effusion"]].set_axis(["edema", "pleural_effusion"], axis=1),
                   df[["p_edema", "p_pleural_effusion"]].to_numpy(), sensitive_features=df[["sex", "race"]],
                   patient_ids=df["patient_id"], split=df["split"], threshold="f1", bootstrap=40, random_state=3)
    assert isinstance(result, AuditResult)
    tables = run_audit(df, AuditConfig(attributes=["sex", "race"], threshold="f1", bootstrap=40, seed=3, summary_exclude=[]))
    for name in ("group_metrics", "equalized_odds", "summary", "performance"):
        ours = getattr(result, name).drop(columns=[c for c in ("missing_test_images",) if c in getattr(result, name)])
        pd.testing.assert_frame_equal(ours.reset_index(drop=True),
                                      tables[name].drop(columns=[c for c in ("missing_test_images",) if c in tables[name]]),
                                      check_dtype=False)


def test_bad_arrays_are_one_line_errors():
    y = np.array([1, 0, 1, 0])
    with pytest.raises(RadfairInputError, match="y_score: 3 rows; expected 4"):
        audit(y, [0.1, 0.2, 0.3], sensitive_features={"sex": ["M", "F", "M", "F"]})
    with pytest.raises(RadfairInputError, match="sensitive_features: 2 rows"):
        audit(y, [0.1, 0.2, 0.3, 0.4], sensitive_features={"sex": ["M", "F"]})
    with pytest.raises(RadfairInputError, match="split"):
        audit(y, [0.1, 0.2, 0.3, 0.4], sensitive_features={"sex": ["M", "F", "M", "F"]}, threshold="f1")

"""disparity_summary: hand-computed Table 4 rows under both averaging and both counting conventions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from radfair.fairness import (
    AVERAGING,
    COUNTING,
    SUMMARY_CONVENTIONS,
    disparity_summary,
    summary_conventions,
    tpr_disparity,
)


def long(values: dict, attribute: str) -> pd.DataFrame:
    """{(seed, label): {group: tpr}} -> radfair's long form."""
    rows = [{"seed": seed, "dataset": "D", "model": "M", "attribute": attribute, "label": label,
             "group": group, "tpr": tpr}
            for (seed, label), by_group in values.items() for group, tpr in by_group.items()]
    return pd.DataFrame(rows)


# Binary attribute, two seeds. Disparities (Male, Female):
#   seed 1: a (+.2, -.2)  b (-.2, +.2)  no_finding (0, 0)
#   seed 2: a (0, 0)      b (+.2, -.2)  no_finding (-.1, +.1)
# Seed means: a (.1, -.1)  b (0, 0)  no_finding (-.05, .05)
SEX = long({
    (1, "a"): {"Male": 0.8, "Female": 0.6}, (1, "b"): {"Male": 0.5, "Female": 0.7},
    (1, "no_finding"): {"Male": 0.9, "Female": 0.9},
    (2, "a"): {"Male": 0.7, "Female": 0.7}, (2, "b"): {"Male": 0.6, "Female": 0.4},
    (2, "no_finding"): {"Male": 0.8, "Female": 0.9},
}, "sex")


def row(tables) -> pd.Series:
    assert len(tables["summary"]) == 1
    return tables["summary"].iloc[0]


def test_binary_seed_mean_sign_is_the_papers_rule():
    tables = disparity_summary(SEX)
    s = row(tables)
    # gaps of the seed means: a .2, b 0, no_finding .1 (kept in the gap table, not in the summary)
    gaps = tables["gaps"].set_index("label")
    assert gaps["gap"].to_dict() == pytest.approx({"a": 0.2, "b": 0.0, "no_finding": 0.1})
    assert gaps["in_summary"].to_dict() == {"a": True, "b": True, "no_finding": False}
    assert s["average_gap"] == pytest.approx(0.1) and np.isnan(s["ci_low"]) and np.isnan(s["ci_high"])
    assert (s["lowest_label"], s["highest_label"]) == ("b", "a")
    assert (s["lowest_gap"], s["highest_gap"]) == (pytest.approx(0.0), pytest.approx(0.2))
    # sign: Male a .1 >= 0, b 0 >= 0 -> favourable on 2; Female a -.1 < 0 -> unfavourable on 1, b 0 favourable
    assert (s["unfavorable"], s["favorable"]) == ("Female (1/2)", "Male (2/2)")
    counts = tables["counts"].set_index("group")
    assert counts.loc["Female", ["n_unfavorable", "n_favorable", "n_labels"]].tolist() == [1, 1, 2]
    assert (s["averaging"], s["counting"], s["n_seeds"], s["n_labels"]) == ("seed-mean", "sign", 2, 2)


def test_binary_strict_extreme_gives_a_tie_to_nobody():
    s = row(disparity_summary(SEX, counting="strict-extreme"))
    # a: Male max, Female min; b: both 0 -> tie, nobody
    assert (s["unfavorable"], s["favorable"]) == ("Female (1/2)", "Male (1/2)")


def test_binary_per_seed_average_with_t_interval():
    tables = disparity_summary(SEX, averaging="per-seed")
    s = row(tables)
    # seed 1 gaps a .4 b .4 -> .4; seed 2 gaps a 0 b .4 -> .2; mean .3, sd .1414, t_1 = 12.706
    half = stats.t.ppf(0.975, 1) * np.std([0.4, 0.2], ddof=1) / np.sqrt(2)
    assert s["average_gap"] == pytest.approx(0.3)
    assert (s["ci_low"], s["ci_high"]) == (pytest.approx(0.3 - half), pytest.approx(0.3 + half))
    gaps = tables["gaps"].set_index("label")["gap"]
    assert gaps.to_dict() == pytest.approx({"a": 0.2, "b": 0.4, "no_finding": 0.1})
    assert (s["lowest_label"], s["highest_label"]) == ("a", "b")
    # the group tables do not depend on the averaging convention
    pd.testing.assert_frame_equal(tables["disparities"], disparity_summary(SEX)["disparities"])


def test_disparity_table_seed_mean_and_t_interval():
    d = disparity_summary(SEX)["disparities"].set_index(["label", "group"])
    half = stats.t.ppf(0.975, 1) * np.std([0.2, 0.0], ddof=1) / np.sqrt(2)
    assert d.loc[("a", "Male"), "disparity_mean"] == pytest.approx(0.1)
    assert d.loc[("a", "Male"), "ci_high"] == pytest.approx(0.1 + half)
    assert d.loc[("no_finding", "Female"), "disparity_mean"] == pytest.approx(0.05)
    assert (d["n_seeds"] == 2).all()


# Four groups, one seed; D has no positives on x (its TPR 1.0 is the reference code's bug 8).
#   x: A .9 B .6 C .7 (D none) -> median of A, B, C = .7 -> A +.2 B -.1 C 0 D NaN; gap .3
#   y: A .5 B .9 C .5 D .6     -> median .55           -> A -.05 B +.35 C -.05 D +.05; gap .4
RACE = long({(7, "x"): {"A": 0.9, "B": 0.6, "C": 0.7, "D": 1.0},
             (7, "y"): {"A": 0.5, "B": 0.9, "C": 0.5, "D": 0.6}}, "race")
RACE["n_pos"] = [10, 10, 10, 0, 10, 10, 10, 10]


def test_multi_group_median_rule_with_a_group_without_positives():
    tables = disparity_summary(RACE, summary_exclude=())
    d = tables["disparities"].set_index(["label", "group"])["disparity_mean"]
    assert d.loc["x"].to_dict() == pytest.approx({"A": 0.2, "B": -0.1, "C": 0.0, "D": np.nan}, nan_ok=True)
    assert d.loc["y"].to_dict() == pytest.approx({"A": -0.05, "B": 0.35, "C": -0.05, "D": 0.05})
    assert tables["disparities"].set_index(["label", "group"]).loc[("x", "D"), "n_pos"] == 0
    s = row(tables)
    assert s["average_gap"] == pytest.approx(0.35)
    assert (s["lowest_label"], s["lowest_gap"], s["highest_label"], s["highest_gap"]) == (
        "x", pytest.approx(0.3), "y", pytest.approx(0.4))
    # one seed: no interval under either averaging
    assert np.isnan(row(disparity_summary(RACE, averaging="per-seed"))["ci_low"])


def test_multi_group_sign_counting_lists_ties_in_input_order():
    s = row(disparity_summary(RACE, summary_exclude=()))
    # unfavourable (< 0): A on y, B on x, C on y -> 1 each; D NaN on x counts for neither
    # favourable (>= 0): A on x, B on y, C on x (0 counts as favourable), D on y -> 1 each
    assert (s["unfavorable"], s["favorable"]) == ("A, B, C (1/2)", "A, B, C, D (1/2)")


def test_multi_group_strict_extreme():
    tables = disparity_summary(RACE, counting="strict-extreme", summary_exclude=())
    s = row(tables)
    # x: max A, min B; y: max B, min tied A = C -> nobody
    assert (s["unfavorable"], s["favorable"]) == ("B (1/2)", "A, B (1/2)")
    counts = tables["counts"].set_index("group")
    assert counts["n_unfavorable"].tolist() == [0, 1, 0, 0] and counts["n_favorable"].tolist() == [1, 1, 0, 0]


def test_no_positives_with_binary_attribute_drops_the_label():
    frame = long({(1, "a"): {"Male": 0.8, "Female": 0.6}, (1, "b"): {"Male": 0.5, "Female": np.nan}}, "sex")
    tables = disparity_summary(frame)
    s = row(tables)
    assert np.isnan(tables["gaps"].set_index("label").loc["b", "gap"])
    assert (s["n_labels"], s["average_gap"], s["unfavorable"], s["favorable"]) == (
        1, pytest.approx(0.4), "Female (1/1)", "Male (1/1)")  # a: +.2 vs -.2


def test_precomputed_disparities_give_the_same_tables():
    disp = tpr_disparity(np.array([[[0.8, 0.5, 0.9], [0.6, 0.7, 0.9]], [[0.7, 0.6, 0.8], [0.7, 0.4, 0.9]]]))
    frame = SEX.copy()
    order = {"a": 0, "b": 1, "no_finding": 2}
    frame["disparity"] = [disp[s - 1, 0 if g == "Male" else 1, order[lab]]
                          for s, g, lab in zip(frame["seed"], frame["group"], frame["label"], strict=True)]
    for averaging in AVERAGING:
        expected = disparity_summary(SEX, averaging=averaging)["summary"]
        got = disparity_summary(frame.drop(columns="tpr"), averaging=averaging)["summary"]
        pd.testing.assert_frame_equal(got, expected)


def test_several_tables_and_summary_exclude_as_a_string():
    both = pd.concat([SEX, SEX.assign(dataset="E")])
    summary = disparity_summary(both, summary_exclude="no_finding")["summary"]
    assert summary["dataset"].tolist() == ["D", "E"]
    assert summary["average_gap"].tolist() == pytest.approx([0.1, 0.1])


def test_convention_names_and_strings():
    assert AVERAGING == ("seed-mean", "per-seed") and COUNTING == ("sign", "strict-extreme")
    assert set(SUMMARY_CONVENTIONS["averaging"]) == set(AVERAGING)
    assert set(SUMMARY_CONVENTIONS["counting"]) == set(COUNTING)
    chosen = summary_conventions("per-seed", "strict-extreme")
    assert chosen["averaging"].startswith("per-seed: ") and chosen["counting"].startswith("strict-extreme: ")
    assert disparity_summary(SEX)["summary"].attrs["conventions"] == summary_conventions()


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"averaging": "mean"}, "valid: seed-mean, per-seed"),
    ({"counting": "max"}, "valid: sign, strict-extreme"),
    ({"level": 1.5}, "level"),
])
def test_bad_conventions_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        disparity_summary(SEX, **kwargs)
    if "level" not in kwargs:
        with pytest.raises(ValueError, match=message):
            summary_conventions(**kwargs)


def test_bad_tables_raise():
    with pytest.raises(ValueError, match="missing columns: group"):
        disparity_summary(SEX.drop(columns="group"))
    with pytest.raises(ValueError, match="exactly one"):
        disparity_summary(SEX.assign(disparity=0.0))
    with pytest.raises(ValueError, match="exactly one"):
        disparity_summary(SEX.drop(columns="tpr"))
    with pytest.raises(ValueError, match="duplicate"):
        disparity_summary(pd.concat([SEX, SEX.head(1)]))

import pandas as pd
import pytest

from radfair.data.cohort import build_cohort
from radfair.data.splits import assign_splits, check_patient_level, parse_fractions, split_cohort_file
from radfair.errors import RadfairInputError
from radfair.io import read_metadata, write_table


@pytest.fixture(scope="module")
def cohort(synth_root):
    return build_cohort("all", synth_root[0])[0]


def test_no_patient_in_two_splits_and_fractions(cohort):
    split = assign_splits(cohort, (0.8, 0.1, 0.1), seed=3)
    per_patient = cohort.assign(split=split).groupby("patient_id")["split"].nunique()
    assert (per_patient == 1).all()
    shares = cohort.assign(split=split).drop_duplicates("patient_id")["split"].value_counts(normalize=True)
    assert shares["train"] == pytest.approx(0.8, abs=0.01)
    assert shares["val"] == pytest.approx(0.1, abs=0.01)


def test_deterministic_and_seed_dependent(cohort):
    a = assign_splits(cohort, seed=1)
    assert a.equals(assign_splits(cohort, seed=1))
    assert not a.equals(assign_splits(cohort, seed=2))


def test_patient_order_does_not_depend_on_row_order(cohort):
    shuffled = cohort.sample(frac=1.0, random_state=0)
    a = assign_splits(cohort, seed=5)
    b = assign_splits(shuffled, seed=5).reindex(a.index)
    assert a.equals(b)


def test_stratified_split_balances_positives(cohort):
    split = assign_splits(cohort, seed=0, stratify=["edema"])
    patients = cohort.assign(split=split).groupby("patient_id").agg(split=("split", "first"), pos=("y_edema", "max"))
    rates = patients.groupby("split")["pos"].mean()
    assert rates["train"] == pytest.approx(rates["test"], abs=0.05)


def test_patient_in_two_splits_is_an_error():
    df = pd.DataFrame({"patient_id": ["a", "a", "b"], "split": ["train", "test", "val"]})
    with pytest.raises(RadfairInputError, match=r"patient\(s\) \['a'\] appear in more than one split"):
        check_patient_level(df, "x.parquet")


def test_bad_fractions():
    with pytest.raises(RadfairInputError, match="--fractions"):
        parse_fractions("0.7,0.2")
    assert parse_fractions("0.7,0.1,0.2") == (0.7, 0.1, 0.2)


def test_split_file_keeps_cohort_metadata(cohort, tmp_path):
    write_table(cohort, tmp_path / "c.parquet", {"uncertain_policy": "zeros"})
    split_cohort_file(tmp_path / "c.parquet", tmp_path / "s.parquet", seed=4)
    meta = read_metadata(tmp_path / "s.parquet")
    assert meta["uncertain_policy"] == "zeros" and meta["split"]["unit"] == "patient"
    assert set(pd.read_parquet(tmp_path / "s.parquet")["split"]) == {"train", "val", "test"}

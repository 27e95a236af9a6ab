"""Table-4 style summaries of TPR disparities over seeds, under *named* conventions.

The embeddings-vs-images paper (Table 4; section "Fairness Evaluation", eqs. 1-3) summarises, per
dataset, model and sensitive attribute, the average TPR-disparity gap over labels, the labels with the
lowest and highest gap and the most (un)favourable groups. Two choices behind those cells are not
stated in the paper and change the numbers, so radfair names them (``AVERAGING``, ``COUNTING``) and
writes the chosen names and their meaning (``summary_conventions``) next to every result.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable

import numpy as np
import pandas as pd

from ._disparity import extreme_groups, gap, label_winners, tpr_disparity
from ._stats import mean_ci_over_seeds

AVERAGING: tuple[str, ...] = ("seed-mean", "per-seed")
COUNTING: tuple[str, ...] = ("sign", "strict-extreme")

SUMMARY_CONVENTIONS: dict[str, dict[str, str]] = {
    "tpr_disparity": {
        "chexclusion": "per seed: binary attribute TPR_g - TPR_(other group); otherwise TPR_g - median of the "
                       "TPRs of the groups with >= 1 positive (median includes g); a group without positives is NaN "
                       "(paper eqs. 1-2)",
    },
    "averaging": {
        "seed-mean": "the paper's: per-group disparities averaged over seeds; gap per label = max - min over groups "
                     "of the seed-mean disparities (eq. 3); average gap = mean over the summary labels with a "
                     "defined gap; no interval (it is not a mean over seeds)",
        "per-seed": "gap per label and average gap computed within each seed, then mean over seeds with a "
                    "Student-t interval (t_(n-1)); lowest/highest label from the seed-mean of the per-seed gaps",
    },
    "counting": {
        "sign": "the paper's: on each summary label a group counts as unfavourable when its seed-mean disparity "
                "is < 0 and favourable when >= 0; the most (un)favourable group has the most such labels; tied "
                "groups are all listed, in input order, as 'A, B (k/L)'",
        "strict-extreme": "radfair's: a group counts on a label when it alone holds the min (unfavourable) or max "
                          "(favourable) seed-mean disparity; a tie at the extreme counts for nobody; tied totals "
                          "are all listed as 'A, B (k/L)'",
    },
    "denominator": {
        "defined": "L = number of summary labels on which >= 2 groups have a defined seed-mean disparity",
    },
    "seed_interval": {
        "student-t": "mean over seeds +- t_(n-1) * sd / sqrt(n) (t_4 = 2.776 for 5 seeds), NaN seeds left out",
    },
}

_KEYS = ["dataset", "model", "attribute"]
_REQUIRED = ["seed", *_KEYS, "label", "group"]


def _check_name(value: str, valid: tuple[str, ...], what: str) -> None:
    if value not in valid:
        raise ValueError(f"unknown {what} convention {value!r}; valid: {', '.join(valid)}")


def summary_conventions(averaging: str = "seed-mean", counting: str = "sign") -> dict[str, str]:
    """The convention strings of one summary, for a study's ``study.json``.

    Returns ``{"tpr_disparity", "averaging", "counting", "denominator", "seed_interval"}`` -> text, each
    text prefixed by the convention's name. Raises ``ValueError`` for an unknown name.
    """
    _check_name(averaging, AVERAGING, "averaging")
    _check_name(counting, COUNTING, "counting")
    chosen = {"tpr_disparity": "chexclusion", "averaging": averaging, "counting": counting,
              "denominator": "defined", "seed_interval": "student-t"}
    return {key: f"{name}: {SUMMARY_CONVENTIONS[key][name]}" for key, name in chosen.items()}


def _cube(frame: pd.DataFrame, value: str) -> tuple[np.ndarray, list, list, list]:
    """(seeds, groups, labels) array of ``value``; missing combinations are NaN. Orders: sorted seeds,
    groups and labels in order of first appearance."""
    seeds = sorted(frame["seed"].unique())
    groups = list(dict.fromkeys(frame["group"]))
    labels = list(dict.fromkeys(frame["label"]))
    s = pd.Index(seeds).get_indexer(frame["seed"])
    g = pd.Index(groups).get_indexer(frame["group"])
    j = pd.Index(labels).get_indexer(frame["label"])
    cube = np.full((len(seeds), len(groups), len(labels)), np.nan)
    cube[s, g, j] = frame[value].to_numpy(dtype=float)
    return cube, seeds, groups, labels


def _sign_extremes(mean: np.ndarray, groups: list, favourable: bool) -> tuple[str, np.ndarray, int]:
    """Most (un)favourable group(s) by sign on the counted labels of a (G, L) seed-mean disparity."""
    valid = np.sum(~np.isnan(mean), axis=0) >= 2
    total = int(valid.sum())
    hits = (mean >= 0) if favourable else (mean < 0)  # NaN compares False: counts for nobody
    counts = np.sum(hits[:, valid], axis=1)
    if total == 0:
        return "", counts, 0
    if counts.max() == 0:
        return f"none (0/{total})", counts, total
    best = np.flatnonzero(counts == counts.max())
    return f"{', '.join(str(groups[i]) for i in best)} ({counts.max()}/{total})", counts, total


def extreme_group_text(mean: np.ndarray, groups: list, favourable: bool, counting: str = "sign") -> str:
    """Most (un)favourable group(s) of a (G, L) seed-mean disparity under ``counting`` (:data:`COUNTING`), as
    ``"Female (8/12)"``; ``""`` when no label has two defined groups. Raises ``ValueError`` for an unknown name."""
    _check_name(counting, COUNTING, "counting")
    if counting == "sign":
        return _sign_extremes(np.asarray(mean, dtype=float), groups, favourable)[0]
    return extreme_groups(np.asarray(mean, dtype=float), [str(g) for g in groups], favourable=favourable)


def _strict_counts(disparity: np.ndarray, favourable: bool) -> np.ndarray:
    """Labels on which each group alone holds the extreme (``label_winners`` rule), per group."""
    winners = label_winners(disparity, favourable)
    return np.bincount(winners[winners >= 0], minlength=disparity.shape[0])


def _nan_reduce(func, values: np.ndarray, axis: int) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices -> NaN
        return func(values, axis=axis)


def disparity_summary(tpr: pd.DataFrame, *, averaging: str = "seed-mean", counting: str = "sign",
                      summary_exclude: Iterable[str] = ("no_finding",), level: float = 0.95,
                      ) -> dict[str, pd.DataFrame]:
    """Table 4 of the embeddings-vs-images paper from per-seed, per-group TPRs, under named conventions.

    Source: emb-vs-image paper, section "Fairness Evaluation", eqs. 1-3 (CheXclusion TPR disparity and
    ``Gap_j``), and Table 4 (``E[Gap_j]``, lowest/highest label, most (un)favourable group ``Female(10/13)``).

    Parameters
    ----------
    tpr : DataFrame, long form, one row per (seed, dataset, model, attribute, label, group)
        Columns ``seed, dataset, model, attribute, label, group`` and either ``tpr`` (true-positive rate
        of the group on the label in that seed's run; NaN for a group without positives) or
        ``disparity`` (per-seed disparities already computed with the CheXclusion rule, e.g. the
        authors' ``Run_seed*_TPR_GAP_*.csv`` files), not both. Optional ``n_pos``: a row with
        ``n_pos == 0`` is treated as NaN whatever its TPR (never TPR = 0 or 1 without positives), and
        its seed mean is reported. A binary attribute is one with exactly two groups in the table.
        Missing (seed, group, label) rows are NaN.
    averaging : {"seed-mean", "per-seed"}
        ``AVERAGING``; see ``SUMMARY_CONVENTIONS["averaging"]``. "seed-mean" is the paper's.
    counting : {"sign", "strict-extreme"}
        ``COUNTING``; see ``SUMMARY_CONVENTIONS["counting"]``. "sign" is the paper's.
    summary_exclude : iterable of str
        Labels left out of the average gap, the lowest/highest label and the counts (they keep their
        rows in the gap and disparity tables). The paper excludes No Finding (13 labels).
    level : float in (0, 1)
        Coverage of the Student-t intervals over seeds.

    Returns
    -------
    dict of DataFrame
        ``summary``: one row per (dataset, model, attribute): ``averaging, counting, n_seeds, n_labels,
        average_gap, ci_low, ci_high`` (interval NaN under "seed-mean" or with < 2 seeds), ``lowest_label,
        lowest_gap, highest_label, highest_gap`` (first label in input order on ties), ``unfavorable,
        favorable`` (``"Female (10/13)"``; tied groups listed ``"A, B (9/13)"``; ``"none (0/13)"``; ``""``
        when no label has two defined groups). ``summary.attrs["conventions"]`` holds
        ``summary_conventions(averaging, counting)``.
        ``gaps``: one row per (dataset, model, attribute, label): ``gap`` (as per ``averaging``),
        ``ci_low, ci_high`` (per-seed only), ``in_summary``.
        ``disparities``: one row per (dataset, model, attribute, label, group): ``disparity_mean, ci_low,
        ci_high, n_seeds`` (and ``n_pos`` when given).
        ``counts``: one row per (dataset, model, attribute, group): ``n_unfavorable, n_favorable,
        n_labels`` under the chosen counting rule.

    Raises
    ------
    ValueError
        Unknown convention name (the message lists the valid ones), missing columns, both or neither of
        ``tpr``/``disparity``, duplicate (seed, dataset, model, attribute, label, group) rows, or ``level``
        outside (0, 1).
    """
    _check_name(averaging, AVERAGING, "averaging")
    _check_name(counting, COUNTING, "counting")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    missing = [c for c in _REQUIRED if c not in tpr.columns]
    if missing:
        raise ValueError(f"missing columns: {', '.join(missing)}")
    has = [c for c in ("tpr", "disparity") if c in tpr.columns]
    if len(has) != 1:
        raise ValueError("give exactly one of the columns 'tpr' or 'disparity'")
    value = has[0]
    if tpr.duplicated(_REQUIRED).any():
        raise ValueError("duplicate (seed, dataset, model, attribute, label, group) rows")
    exclude = {summary_exclude} if isinstance(summary_exclude, str) else set(summary_exclude)
    frame = tpr.copy()
    if "n_pos" in frame.columns:
        frame.loc[frame["n_pos"].to_numpy() == 0, value] = np.nan

    summary_rows, gap_frames, disp_frames, count_frames = [], [], [], []
    for key, sub in frame.groupby(_KEYS, sort=False):
        ident = dict(zip(_KEYS, key, strict=True))
        cube, seeds, groups, labels = _cube(sub, value)
        disp = tpr_disparity(cube) if value == "tpr" else cube  # (S, G, L)
        mean, low, high = mean_ci_over_seeds(disp, level)  # (G, L)
        mask = np.array([label not in exclude for label in labels])

        disp_table = pd.DataFrame({
            **ident,
            "label": np.tile(labels, len(groups)), "group": np.repeat(groups, len(labels)),
            "disparity_mean": mean.ravel(), "ci_low": low.ravel(), "ci_high": high.ravel(),
            "n_seeds": np.sum(~np.isnan(disp), axis=0).ravel(),
        })
        if "n_pos" in sub.columns:
            disp_table["n_pos"] = _nan_reduce(np.nanmean, _cube(sub, "n_pos")[0], 0).ravel()
        disp_frames.append(disp_table)

        if averaging == "seed-mean":
            label_gap = gap(mean)  # (L,)
            gap_low = gap_high = np.full(len(labels), np.nan)
            summary_gaps = label_gap[mask]
            average = float(_nan_reduce(np.nanmean, summary_gaps, 0)) if mask.any() else np.nan
            avg_low = avg_high = np.nan
        else:
            seed_gaps = gap(disp)  # (S, L)
            label_gap, gap_low, gap_high = mean_ci_over_seeds(seed_gaps, level)
            summary_gaps = label_gap[mask]
            per_seed = _nan_reduce(np.nanmean, seed_gaps[:, mask], 1) if mask.any() else np.full(len(seeds), np.nan)
            average, avg_low, avg_high = (float(x) for x in mean_ci_over_seeds(per_seed, level))
        gap_frames.append(pd.DataFrame({**ident, "label": labels, "gap": label_gap, "ci_low": gap_low,
                                        "ci_high": gap_high, "in_summary": mask}))

        finite = np.isfinite(summary_gaps)
        summary_labels = [label for label, keep in zip(labels, mask, strict=True) if keep]
        lowest = int(np.nanargmin(summary_gaps)) if finite.any() else -1
        highest = int(np.nanargmax(summary_gaps)) if finite.any() else -1

        m = mean[:, mask]
        if counting == "sign":
            unf, n_unf, total = _sign_extremes(m, groups, favourable=False)
            fav, n_fav, _ = _sign_extremes(m, groups, favourable=True)
        else:
            defined = ~np.all(np.isnan(m), axis=1)
            names = [g for g, d in zip(groups, defined, strict=True) if d]
            unf = extreme_groups(m[defined], names, favourable=False) if names else ""
            fav = extreme_groups(m[defined], names, favourable=True) if names else ""
            valid = np.sum(~np.isnan(m), axis=0) >= 2
            total = int(valid.sum())
            n_unf, n_fav = (_strict_counts(m[:, valid], fav_) for fav_ in (False, True))
        count_frames.append(pd.DataFrame({**ident, "group": groups, "n_unfavorable": n_unf,
                                          "n_favorable": n_fav, "n_labels": total}))
        summary_rows.append({
            **ident, "averaging": averaging, "counting": counting,
            "n_seeds": int(np.sum(np.any(~np.isnan(disp), axis=(1, 2)))), "n_labels": int(finite.sum()),
            "average_gap": average, "ci_low": avg_low, "ci_high": avg_high,
            "lowest_label": summary_labels[lowest] if lowest >= 0 else "",
            "lowest_gap": float(summary_gaps[lowest]) if lowest >= 0 else np.nan,
            "highest_label": summary_labels[highest] if highest >= 0 else "",
            "highest_gap": float(summary_gaps[highest]) if highest >= 0 else np.nan,
            "unfavorable": unf, "favorable": fav,
        })

    summary = pd.DataFrame(summary_rows, columns=[*_KEYS, "averaging", "counting", "n_seeds", "n_labels",
                                                  "average_gap", "ci_low", "ci_high", "lowest_label",
                                                  "lowest_gap", "highest_label", "highest_gap",
                                                  "unfavorable", "favorable"])
    summary.attrs["conventions"] = summary_conventions(averaging, counting)
    return {"summary": summary, "gaps": _concat(gap_frames), "disparities": _concat(disp_frames),
            "counts": _concat(count_frames)}


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

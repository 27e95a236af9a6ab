"""One sorted sweep per label gives every group's AUROC, confusion counts and calibration sums, for many replicates.

Rows of a label (those with a known ``y``) are visited in ascending score order; for each row, every
grouping (overall, then each attribute) adds the row's weight ``w`` -- the bootstrap multiplicity of its
patient -- to its group's running totals: negatives ``N``, positives ``P``, predicted mass ``S = sum w p``,
squared error ``Q = sum w (y - p)^2`` (Brier score ``Q / (N + P)``; Brier 1950), and the Mann-Whitney numerator ``U += w P_below`` (ties count one half, as in scikit-learn's
``roc_auc_score``; Hanley & McNeil 1982):

``AUC_g = U_g / (P_g N_g)``.

Because rows are sorted, every threshold statistic is a snapshot of the running totals at a cut:

* at the decision threshold ``tau`` (predicted positive iff ``p >= tau``): FN = P(p < tau), TN = N(p < tau),
  TP = P - FN, FP = N - TN;
* at the calibration bin edges ``k/K`` (bins ``(k/K, (k+1)/K]``, the first also holds 0, as scikit-learn's
  ``calibration_curve(strategy="uniform")``): per-bin count, sum y and sum p are differences of
  snapshots.

The cost is O(rows x groupings) per replicate, with each update a SIMD loop over a chunk of replicates.
Weights are integers, so every count and the AUROC numerator are exact in float64. Independent
implementations used by the tests: :class:`radfair.fairness.AucPlan` (prefix sums) and
:class:`radfair.fairness.GroupCounts` (matrix products of per-image indicator rows). The kernel is compiled
by numba (cached on disk) and releases the GIL, so the audit's thread pool uses every core.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from ._calibration import N_BINS

NEG, POS, PRED, SQUARED = range(4)  # running totals kept at each cut: negatives, positives, sum w p, sum w (y - p)^2


@cache
def _kernel():
    import numba

    @numba.njit(nogil=True, cache=True)
    def sweep(weights_t, unit, positive, score, cell, block_starts, label_blocks, cut_block, cut_slot, label_cuts,
              n_cells, n_slots):  # pragma: no cover - compiled
        # weights_t (n_units, B): a row's multiplicities are one contiguous vector over replicates
        n_rep = weights_t.shape[1]
        n_labels = label_blocks.shape[0] - 1
        n_levels = cell.shape[1]
        auc = np.empty((n_labels, n_cells, n_rep))
        snap = np.zeros((n_labels, n_slots, 4, n_cells, n_rep))
        tot = np.empty((4, n_cells + 1, n_rep))  # the last cell collects rows outside every group, never read
        num = np.empty((n_cells + 1, n_rep))
        tie = np.zeros((2, n_cells + 1, n_rep))
        pending = np.zeros(n_cells + 1, dtype=np.bool_)
        for label in range(n_labels):
            tot[:] = 0.0
            num[:] = 0.0
            ci = label_cuts[label]
            for k in range(label_blocks[label], label_blocks[label + 1] + 1):
                while ci < label_cuts[label + 1] and cut_block[ci] == k:
                    snap[label, cut_slot[ci]] = tot[:, :n_cells]
                    ci += 1
                if k == label_blocks[label + 1]:
                    break
                start, end = block_starts[k], block_starts[k + 1]
                if end - start == 1:  # no tie: the common case
                    w = weights_t[unit[start]]
                    p = score[start]
                    sq = (1.0 - p) ** 2 if positive[start] else p * p
                    for level in range(n_levels):
                        c = cell[start, level]
                        if positive[start]:
                            for r in range(n_rep):
                                num[c, r] += w[r] * tot[NEG, c, r]
                                tot[POS, c, r] += w[r]
                                tot[PRED, c, r] += w[r] * p
                                tot[SQUARED, c, r] += w[r] * sq
                        else:
                            for r in range(n_rep):
                                tot[NEG, c, r] += w[r]
                                tot[PRED, c, r] += w[r] * p
                                tot[SQUARED, c, r] += w[r] * sq
                    continue
                for i in range(start, end):  # a tie block: collect, then count the ties one half
                    w = weights_t[unit[i]]
                    side = 1 if positive[i] else 0
                    sq = (1.0 - score[i]) ** 2 if positive[i] else score[i] * score[i]
                    for level in range(n_levels):
                        c = cell[i, level]
                        pending[c] = True
                        for r in range(n_rep):
                            tie[side, c, r] += w[r]
                            tot[PRED, c, r] += w[r] * score[i]
                            tot[SQUARED, c, r] += w[r] * sq
                for c in range(n_cells + 1):
                    if pending[c]:
                        for r in range(n_rep):
                            num[c, r] += tie[1, c, r] * (tot[NEG, c, r] + 0.5 * tie[0, c, r])
                            tot[NEG, c, r] += tie[0, c, r]
                            tot[POS, c, r] += tie[1, c, r]
                            tie[0, c, r] = 0.0
                            tie[1, c, r] = 0.0
                        pending[c] = False
            snap[label, n_slots - 1] = tot[:, :n_cells]
            for c in range(n_cells):
                for r in range(n_rep):
                    if tot[POS, c, r] > 0.0 and tot[NEG, c, r] > 0.0:
                        auc[label, c, r] = num[c, r] / (tot[POS, c, r] * tot[NEG, c, r])
                    else:
                        auc[label, c, r] = np.nan
        return auc, snap

    return sweep


class ScoreSweep:
    """Sort orders, cuts and group cells of every label, reused for every chunk of replicates.

    Parameters
    ----------
    y, scores : (n_rows, n_labels); rows with NaN ``y`` are left out of that label.
    thresholds : (n_labels,) decision thresholds (NaN: nothing is predicted positive).
    unit : (n_rows,) column of the weight matrix each row takes its weight from (its patient).
    codes : list of (n_rows,) group codes, one array per grouping (-1 = in no group of it).
    n_groups : number of groups of each grouping.
    n_bins : calibration bins.
    """

    def __init__(self, y: np.ndarray, scores: np.ndarray, thresholds: np.ndarray, unit: np.ndarray,
                 codes: list[np.ndarray], n_groups: list[int], n_bins: int = N_BINS):
        y = np.asarray(y, dtype=float)
        scores = np.asarray(scores, dtype=float)
        self.n_groups, self.n_bins = list(n_groups), n_bins
        self.n_cells = int(sum(n_groups))
        offsets = np.r_[0, np.cumsum(n_groups)[:-1]]
        cell = np.stack([np.where(c >= 0, c + off, self.n_cells) for c, off in zip(codes, offsets, strict=True)], axis=1)
        inner_edges = np.linspace(0.0, 1.0, n_bins + 1)[1:-1]
        parts: dict[str, list] = {k: [] for k in ("unit", "positive", "score", "cell", "starts", "cut_block", "cut_slot")}
        label_blocks, label_cuts, rows_done = [0], [0], 0
        for j in range(y.shape[1]):
            keep = np.flatnonzero(~np.isnan(y[:, j]))
            order = keep[np.argsort(scores[keep, j], kind="mergesort")]
            s = scores[order, j]
            new_value = np.r_[True, s[1:] != s[:-1]] if len(s) else np.zeros(0, bool)
            block_scores = s[new_value]
            # slot k < K-1: rows in bins <= k (score <= edge k+1); slot K-1: rows predicted negative (score < tau)
            cuts = np.r_[np.searchsorted(block_scores, inner_edges, side="right"),
                         np.searchsorted(block_scores, thresholds[j], side="left")] + label_blocks[-1]
            slots = np.argsort(cuts, kind="stable")
            parts["cut_block"].append(cuts[slots])
            parts["cut_slot"].append(slots)
            parts["unit"].append(unit[order])
            parts["positive"].append(y[order, j] == 1)
            parts["score"].append(s)
            parts["cell"].append(cell[order])
            parts["starts"].append(np.flatnonzero(new_value) + rows_done)
            rows_done += len(order)
            label_blocks.append(label_blocks[-1] + len(block_scores))
            label_cuts.append(label_cuts[-1] + len(cuts))
        joined = {k: np.concatenate(v) for k, v in parts.items()}
        self._args = (
            np.ascontiguousarray(joined["unit"], dtype=np.int64), joined["positive"].astype(np.bool_),
            joined["score"].astype(np.float64), np.ascontiguousarray(joined["cell"], dtype=np.int64),
            np.r_[joined["starts"], rows_done].astype(np.int64), np.asarray(label_blocks, dtype=np.int64),
            joined["cut_block"].astype(np.int64), joined["cut_slot"].astype(np.int64), np.asarray(label_cuts, dtype=np.int64),
        )

    def run(self, weights: np.ndarray) -> list[dict[str, np.ndarray]]:
        """Statistics for each row of ``weights`` (B, n_units), one dict per grouping.

        Keys: ``auc`` (B, G, L); ``brier`` (B, G, L): mean (y - p)^2 over the rows with a known label (NaN for a group
        without any); ``counts`` (B, G, L, 4) ordered (tp, fn, fp, tn); ``residuals``
        (B, G, L, K + 1): sum of (y - p) per calibration bin, then the number of rows; ``bins``
        (B, G, L, K, 3): count, sum y and sum p per bin.
        """
        weights_t = np.ascontiguousarray(np.asarray(weights, dtype=np.float32).T)  # integers: exact in float32
        auc, snap = _kernel()(weights_t, *self._args, self.n_cells, self.n_bins + 1)
        # snap (L, slots, 3, C, B) -> (B, C, L, slots, 3)
        snap = snap.transpose(4, 3, 0, 1, 2)
        auc = auc.transpose(2, 1, 0)
        below_tau, final = snap[..., self.n_bins - 1, :], snap[..., self.n_bins, :]
        fn, tn = below_tau[..., POS], below_tau[..., NEG]
        counts = np.stack([final[..., POS] - fn, fn, final[..., NEG] - tn, tn], axis=-1)
        cumulative = np.concatenate([snap[..., : self.n_bins - 1, :], final[..., None, :]], axis=-2)  # bins <= k
        per_bin = np.diff(cumulative, axis=-2, prepend=0.0)
        count = per_bin[..., NEG] + per_bin[..., POS]
        bins = np.stack([count, per_bin[..., POS], per_bin[..., PRED]], axis=-1)
        residuals = np.concatenate([per_bin[..., POS] - per_bin[..., PRED], count.sum(axis=-1, keepdims=True)], axis=-1)
        with np.errstate(invalid="ignore", divide="ignore"):
            brier = final[..., SQUARED] / (final[..., NEG] + final[..., POS])
        bounds = np.r_[0, np.cumsum(self.n_groups)]
        return [{"auc": auc[:, lo:hi], "brier": brier[:, lo:hi], "counts": counts[:, lo:hi], "residuals": residuals[:, lo:hi],
                 "bins": bins[:, lo:hi]}
                for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)]

"""``validation.json`` of a mitigation run: what λ is chosen on (reconstruction paper §3.5, "a one-dimensional log-scale
sweep ... on the validation split").

Every summary holds ``val_psnr`` (mean over validation images or volumes), a performance key and a fairness key,
named in ``performance_key`` / ``fairness_key`` for :func:`radfair.mitigation.choose_weight`:

* classifier downstream: ``val_auroc`` (mean over labels) and ``val_eodd`` (mean over attributes and labels of the
  hard worst-case EODD at balanced thresholds chosen per label on the classifier's clean validation scores);
* segmenter downstream (UCSF-PDGM): ``val_dice`` (mean over patients of the mean per-slice Dice on the segmenter's
  inference slices) and ``val_dice_gap``
  (mean over attributes of ΔDice = max − min group mean Dice, the worst case over groups).

Volumes are scored exactly as ``score-volumes`` scores them (:func:`radfair.training.mri_downstream.score_volumes`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..fairness import choose_threshold, equalized_odds, group_dice, segmentation_fairness, weighted_auc
from ..io import read_table
from ..training.classify import predict_scores
from ..training.inputs import ImageBatches, RowView, image_array

KEYS = {"classification": ("val_auroc", "val_eodd"), "segmentation": ("val_dice", "val_dice_gap")}


def hard_eodd(pred: np.ndarray, y: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Worst-case EODD (max over group pairs of |ΔTPR|, |ΔFPR|) per attribute and label, (A, L); NaN where undefined."""
    out = np.full((groups.shape[1], y.shape[1]), np.nan)
    for a in range(groups.shape[1]):
        codes = np.unique(groups[:, a][groups[:, a] >= 0])
        tpr = np.full((len(codes), y.shape[1]), np.nan)
        fpr = np.full_like(tpr, np.nan)
        for i, code in enumerate(codes):
            member = groups[:, a] == code
            for k in range(y.shape[1]):
                pos, neg = member & (y[:, k] == 1), member & (y[:, k] == 0)
                if pos.any():
                    tpr[i, k] = pred[pos, k].mean()
                if neg.any():
                    fpr[i, k] = pred[neg, k].mean()
        if len(codes) >= 2:
            out[a] = equalized_odds(tpr, fpr)["eodd_worst"]
    return out


def _nanmax(values) -> float | None:
    values = np.asarray(values, dtype=float)
    return float(np.nanmax(values)) if np.isfinite(values).any() else None


def _nanmean(values) -> float | None:
    values = np.asarray(values, dtype=float)
    return float(np.nanmean(values)) if np.isfinite(values).any() else None


def _number(value) -> float | None:
    """A float for JSON, None where undefined (NaN)."""
    return None if value is None or not np.isfinite(value) else float(value)


def classifier_metrics(labels: list[str], attributes: list[str], y: np.ndarray, p_recon: np.ndarray, p_clean: np.ndarray,
                       groups: np.ndarray) -> dict:
    """AUROC per label on the reconstructions and hard worst-case EODD at balanced thresholds from the clean scores."""
    auroc, thresholds = {}, {}
    for k, label in enumerate(labels):
        known = ~np.isnan(y[:, k])
        defined = known.any() and 0 < y[known, k].sum() < known.sum()
        auroc[label] = float(weighted_auc(y[known, k], p_recon[known, k])) if defined else None
        thresholds[label] = _number(choose_threshold(y[:, k], p_clean[:, k], "balanced"))
    tau = np.array([np.nan if thresholds[label] is None else thresholds[label] for label in labels])
    eodd = hard_eodd((p_recon >= tau).astype(float), y, groups)
    eodd_clean = hard_eodd((p_clean >= tau).astype(float), y, groups)
    defined_auroc = [v for v in auroc.values() if v is not None]
    return {
        "val_auroc": float(np.mean(defined_auroc)) if defined_auroc else None,
        # λ is chosen on the mean over (attribute, label) cells of the worst-case-over-groups EODD: the maximum over
        # cells saturates at 1 as soon as one rare finding has a single positive in a small validation group
        "val_eodd": _nanmean(eodd), "val_eodd_clean": _nanmean(eodd_clean), "val_eodd_max": _nanmax(eodd),
        "eodd_convention": "val_eodd: mean over attributes and labels of the worst case over group pairs of "
                           "max(|dTPR|, |dFPR|); val_eodd_max: the maximum over attributes and labels",
        "auroc": auroc, "thresholds": thresholds,
        "eodd": {a: dict(zip(labels, map(_number, eodd[i]), strict=True)) for i, a in enumerate(attributes)},
    }


def image_validation(config, downstream, label_index, pairs: pd.DataFrame, pairs_path: Path, table: pd.DataFrame,
                     run_dir: Path, device, groups: np.ndarray, progress: bool) -> dict:
    """Validation summary of X-ray pairs: the frozen classifier (a :class:`~radfair.mitigation._downstream.Downstream`,
    read with its own pixel scaling) on the mitigated and the clean validation images."""
    classifier, image_size = downstream.model, downstream.image_size
    val_pairs = np.flatnonzero((pairs["split"] == "val").to_numpy())
    val_recon = np.flatnonzero((table["split"] == "val").to_numpy())
    if not np.array_equal(table["image_id"].to_numpy()[val_recon], pairs["image_id"].to_numpy()[val_pairs]):
        raise RuntimeError("reconstructed validation rows are not in the order of the pairs")
    recon_path = run_dir / "reconstructed.parquet"

    def scores(array, rows):
        source = ImageBatches(RowView(array, rows), torch.zeros(len(rows), 0), 64, shuffle=False, device=device,
                              scaling=downstream.scaling)
        return predict_scores(classifier, source, device)[:, label_index]

    recon_images = image_array(read_table(recon_path, "reconstructed table"), recon_path, image_size, progress=progress,
                               persist=False)  # scratch images, scored once: never in the shared cache
    clean_images = image_array(pairs, pairs_path, image_size, column="path_clean", progress=progress)
    y = pairs[[f"y_{label}" for label in config.labels]].to_numpy(float)[val_pairs]
    metrics = classifier_metrics(config.labels, config.mitigation.attributes, y, scores(recon_images, val_recon),
                                 scores(clean_images, val_pairs), groups[val_pairs])
    return {"val_psnr": float(table["psnr"].to_numpy()[val_recon].mean()), **metrics, "n_val": int(len(val_pairs))}


def category_codes(values: pd.Series, categories: list[str]) -> np.ndarray:
    """int64 codes of ``values`` (as strings) in ``categories``; missing or unlisted = −1."""
    return pd.Categorical(values.astype("string"), categories=categories).codes.astype(np.int64)


def _dice_gaps(table: pd.DataFrame, attributes: list[str], categories: dict[str, list[str]]) -> dict[str, float | None]:
    """ΔDice (max − min group mean Dice) per attribute over the patients with a defined Dice."""
    rows = table[table["dice"].notna()]
    gaps = {}
    for attribute in attributes:
        codes = category_codes(rows[attribute], categories[attribute])
        known = codes >= 0
        present = np.unique(codes[known])
        per_group = group_dice(rows["dice"].to_numpy(float)[known], codes[known], len(categories[attribute]))[0]
        gaps[attribute] = _number(segmentation_fairness(per_group)["delta_dice"]) if len(present) >= 2 else None
    return gaps


def volume_validation(config, run_dir: Path, pairs: pd.DataFrame, categories: dict[str, list[str]], device,
                      progress: bool, scores_path: Path | None = None) -> dict:
    """Validation summary of NIfTI pairs: the frozen MRI model scores the mitigated validation volumes
    (``run_dir/reconstructed.parquet``) as ``score-volumes`` does (into ``scores_path``, default
    ``run_dir/validation_scores.parquet``); the clean reference is the model run's own val rows."""
    from ..execution.store import run_output
    from ..training.frozen_mri import score_volumes

    recon_path = run_dir / "reconstructed.parquet"
    table = read_table(recon_path, "reconstructed table")
    psnr = float(table.loc[table["split"] == "val", "psnr"].mean())
    attributes = config.mitigation.attributes
    info = pairs[["image_id", *attributes]].drop_duplicates("image_id")
    if config.mitigation.task == "segmentation":
        model_run = Path(config.segmenter_run)
        clean = pd.read_parquet(run_output(model_run, "segmentation")).query("split == 'val'")
    else:
        model_run = Path(config.classifier_run)
        clean = pd.read_parquet(run_output(model_run, "scored")).query("split == 'val'")
    scored = score_volumes(model_run, recon_path, scores_path or run_dir / "validation_scores.parquet", splits=("val",), device=str(device),
                           progress=progress)
    scored = scored[["image_id", *[c for c in scored.columns if c == "dice" or c.startswith("p_")]]]
    paired = clean.drop(columns=[c for c in attributes if c in clean.columns]).merge(
        scored, on="image_id", suffixes=("_clean", ""), validate="one_to_one").merge(info, on="image_id", how="left")
    if config.mitigation.task == "segmentation":
        gaps = _dice_gaps(paired, attributes, categories)
        clean_gaps = _dice_gaps(paired.assign(dice=paired["dice_clean"]), attributes, categories)
        return {"val_psnr": psnr, "val_dice": _number(paired["dice"].mean()), "val_dice_clean": _number(paired["dice_clean"].mean()),
                "val_dice_gap": _nanmean([np.nan if v is None else v for v in gaps.values()]),
                "val_dice_gap_clean": _nanmean([np.nan if v is None else v for v in clean_gaps.values()]),
                "dice_gap": gaps, "dice_gap_convention": "val_dice_gap: mean over attributes of max − min group mean "
                                                         "patient Dice (mean per-slice Dice on the inference slices)",
                "n_val": int(len(paired))}
    labels = config.labels
    groups = np.stack([category_codes(paired[a], categories[a]) for a in attributes], 1) if attributes else np.zeros((len(paired), 0), np.int64)
    metrics = classifier_metrics(labels, attributes, paired[[f"y_{k}" for k in labels]].to_numpy(float),
                                 paired[[f"p_{k}" for k in labels]].to_numpy(float),
                                 paired[[f"p_{k}_clean" for k in labels]].to_numpy(float), groups)
    return {"val_psnr": psnr, **metrics, "n_val": int(len(paired))}


__all__ = ["KEYS", "category_codes", "classifier_metrics", "hard_eodd", "image_validation", "volume_validation"]

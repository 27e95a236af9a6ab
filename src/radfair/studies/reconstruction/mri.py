"""Study 2, UCSF-PDGM part: radially undersampled FLAIR -> reconstructors -> frozen slice classifier and segmenter.

The slice classifier (high grade, glioblastoma; per-patient median of slice scores) and the tumour U-Net train
on the clean volumes of the downstream patients only, on ``mri.slices.train`` (the paper: every slice), and score
``mri.slices.inference`` (the paper: slices 60-130, whatever the mask; a patient's Dice is the mean of its
per-slice Dice, appendix "Diagnostic Hyperparameters"); each reconstructor (kind x acceleration) trains on the
kept axial slices of the reconstruction patients' (undersampled, clean) volume pairs and reconstructs whole
test volumes; ``score-volumes`` scores each reconstruction with both frozen models. Segmentation fairness
(ΔDice, SER) and mean Dice come from :func:`radfair.fairness.paired_segmentation_comparison` on the same
patient resamples for clean and reconstructed volumes.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from ...degradation.run import degrade_mri
from ...execution import RunSpec
from ...fairness import paired_segmentation_comparison
from ...io import read_table, write_table
from ...training import mri_downstream
from ...training.reconstruct_run import ReconstructorRunConfig
from ...training.volumes import SliceSettings
from .parts import (
    DatasetPart,
    Key,
    PartOutputs,
    classifier_shift,
    mitigation_references,
    quality_rows,
    with_study_attributes,
)
from .scoring import score_volumes_spec

DATASET = "ucsf-pdgm"
SEGMENTATION_TASK = "tumour_segmentation"


def level_name(mask: str, acceleration: float) -> str:
    return f"mri_{mask}_R{acceleration:g}"


def downstream_cohort(split: pd.DataFrame, path: Path) -> Path:
    """The clean volumes of every patient except the reconstruction-training ones."""
    table = split[split["recon_split"] != "reconstruction"].reset_index(drop=True)
    if not path.is_file() or not read_table(path).equals(table):
        write_table(table, path)
    return path


def group_codes(values: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Integer codes of an attribute's groups in sorted order (−1 = missing)."""
    groups = sorted(values.dropna().astype(str).unique())
    lookup = {g: i for i, g in enumerate(groups)}
    return values.map(lambda v: lookup.get(str(v), -1) if pd.notna(v) else -1).to_numpy(np.int64), groups


def segmentation_shift(key: Key, clean: pd.DataFrame, recon: pd.DataFrame, attributes: list[str], analysis, out: PartOutputs) -> None:
    """Paired patient bootstrap of mean Dice (performance) and ΔDice, SER (bias_shift) per attribute."""
    paired = clean.merge(recon[["patient_id", "dice"]], on="patient_id", suffixes=("_clean", "_recon"), validate="one_to_one")
    kind, level, mitigation = key
    base = {"dataset": DATASET, "reconstructor": kind, "level": level, "mitigation": mitigation, "label": SEGMENTATION_TASK}
    for number, attribute in enumerate(attributes):
        codes, groups = group_codes(paired[attribute])
        if len(groups) < 2:
            out.notes.append(f"{DATASET}/{kind}/{level}/{mitigation}: {attribute} has fewer than two groups among test patients; "
                             "segmentation fairness not analysed")
            continue
        rows = pd.DataFrame(paired_segmentation_comparison(paired["dice_clean"], paired["dice_recon"], codes, groups,
                                                           analysis.bootstrap, analysis.seed, analysis.level, analysis.p_value))
        rows = rows.rename(columns={"value_a": "baseline", "value_b": "reconstructed"}).assign(**base, attribute=attribute)
        with np.errstate(divide="ignore", invalid="ignore"):
            rows["pct_change"] = 100 * rows["delta"] / rows["baseline"]
        out.shift.append(rows[rows["metric"] != "dice"])
        if number == 0:
            dice = rows[rows["metric"] == "dice"]
            out.performance.append(dice.assign(task=SEGMENTATION_TASK)[
                ["dataset", "reconstructor", "level", "mitigation", "task", "metric", "baseline", "reconstructed", "delta", "ci_low",
                 "ci_high", "p_value"]])


class MriPart(DatasetPart):
    dataset, name, short, study_key = DATASET, "mri", "ucsf", "mri"

    def prepare(self) -> None:
        self.prepare_split()
        d = self.study.degradation
        degrade_mri(self.manifest["split"], self.out / "degraded_mri", d.accelerations, d.mask, seed=d.seed, device=self.config.device)
        self.cohort = downstream_cohort(self.split, self.out / "data" / "mri_downstream.parquet")
        self.volume_size = int(nib.load(str(self.split["path"].iloc[0])).shape[0])

    def levels(self) -> list[str]:
        d = self.study.degradation
        return [level_name(d.mask, r) for r in d.accelerations]

    def downstream_specs(self) -> dict[str, RunSpec]:
        c, s, device = self.study.classifier, self.study.segmenter, self.config.device
        self.classifier = mri_downstream.run_spec(
            "train-slice-classifier", device=device, label="ucsf-slice-classifier", cohort=str(self.cohort), labels=self.study.labels,
            model=c.model, weights=c.weights, slices=self.study.slices, batch_size=c.batch_size, seed=c.seed, optim=c.optim, loop=c.loop)
        self.segmenter = mri_downstream.run_spec(
            "train-segmenter", device=device, label="ucsf-segmenter", cohort=str(self.cohort), widths=s.widths, bottleneck=s.bottleneck,
            norm=s.norm, weights=s.weights, pixel_loss=s.pixel_loss, dice_weight=s.dice_weight, slices=self.study.slices, empty_slices=s.empty_slices, batch_size=s.batch_size, seed=s.seed, optim=s.optim, loop=s.loop)
        return {"classifier": self.classifier, "segmenter": self.segmenter}

    def run_config(self, kind: str, level: str, **extra) -> ReconstructorRunConfig:
        """Reconstructors train on every axial slice (tumour or not) at the volumes' own in-plane size."""
        return super().run_config(kind, level, image_size=self.volume_size,
                                  volumes=SliceSettings(size=self.volume_size, include_empty=True), **extra)

    def mitigation_downstream(self) -> tuple[str, dict, RunSpec]:
        """(task, run-config fields, model run) of the frozen model mitigation fine-tunes against: the tumour
        segmenter (Dice task loss, worst-case soft-Dice gap; the slice classifier then scores the result unchanged)."""
        return "segmentation", {"segmenter_run": str(self.runs.run_dir(self.segmenter))}, self.segmenter

    def scoring_specs(self, recon: dict[Key, RunSpec]) -> dict[Key, dict[str, RunSpec]]:
        """One ``score-volumes`` run per reconstruction: it reconstructs the test volumes once and scores them with
        both frozen models."""
        models = {"classifier": self.classifier, "segmenter": self.segmenter}
        return {key: {"volumes": score_volumes_spec(self.runs, models, spec, self.config.device, f"score-{spec.label}")}
                for key, spec in recon.items()}

    def analyse(self, recon: dict[Key, RunSpec], scoring: dict[Key, dict[str, RunSpec]]) -> PartOutputs:
        a, out = self.config.analysis, PartOutputs()
        clean = self.clean_scores()
        thresholds, labels = self.thresholds(clean, out)
        attributes = [x for x in a.attributes if x in clean.columns and clean[x].notna().any()]
        segmented = pd.read_parquet(self.runs.output(self.segmenter, "segmentation")).query("split == 'test'")
        segmented = with_study_attributes(segmented, self.split)
        scores, segmentations = {}, {}
        for key in recon:
            scored = pd.read_parquet(self.runs.output(scoring[key]["volumes"], "classifier_scores"))
            scores[key] = with_study_attributes(scored, self.split)
            if labels:
                classifier_shift(DATASET, key, clean, scores[key], labels, attributes, thresholds, a, out)
            recon_seg = pd.read_parquet(self.runs.output(scoring[key]["volumes"], "segmenter_scores")).query("split == 'test'")
            segmentations[key] = with_study_attributes(recon_seg, self.split)
            segmentation_shift(key, segmented, recon_seg, attributes, a, out)
            out.performance.append(quality_rows(DATASET, key, self.reconstructed_table(scoring[key])))
        for key, reference, role in mitigation_references(recon):  # primary: the same-budget fine-tune; secondary: the original
            against = PartOutputs()
            if labels:
                classifier_shift(DATASET, key, scores[reference], scores[key], labels, attributes, thresholds, a, against)
            segmentation_shift(key, segmentations[reference], segmentations[key], attributes, a, against)
            out.versus_standard += [rows.assign(reference=reference[2], comparison=role) for rows in against.shift]
        return out


__all__ = ["MriPart", "downstream_cohort", "group_codes", "level_name", "segmentation_shift"]

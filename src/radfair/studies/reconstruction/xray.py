"""Study 2, X-ray part: low-dose X-ray -> reconstructors -> the frozen multi-finding classifier.

The part's dataset is ``xray.source``, any registered X-ray dataset or a manifest (CheXpert in the paper, its
12 findings); its tables, figures, thresholds and rows of ``bias_shift`` / ``performance`` are keyed by that name.

The classifier (DenseNet-121) trains on the clean images of the classifier patients only; each reconstructor
(kind x dose level) trains on the reconstruction patients; ``predict-classifier`` reconstructs the test images with
each reconstructor (into scratch) and scores them.
The degraded images are written once by ``radfair degrade xray`` into ``OUT/degraded_xray/``.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pandas as pd

from ...degradation.run import degrade_xray
from ...execution import RunSpec
from ...io import read_table, write_table
from ...training.classify import TRAIN_CLASSIFIER, resolve_config
from ...training.reconstruct_run import ReconstructorRunConfig
from .parts import (
    DatasetPart,
    Key,
    PartOutputs,
    classifier_shift,
    mitigation_references,
    quality_rows,
    with_study_attributes,
)
from .scoring import predict_spec


def level_name(mode: str, photons: float) -> str:
    return f"xray_{mode}_{int(photons)}"


def classifier_cohort(split: pd.DataFrame, degraded: pd.DataFrame, path: Path) -> Path:
    """Clean (degrade's working-size) images of every patient except the reconstruction-training ones."""
    clean = degraded.drop_duplicates("image_id")[["image_id", "path_clean"]]
    table = split[split["recon_split"] != "reconstruction"].merge(clean, on="image_id", how="inner")
    table = table.assign(path=table.pop("path_clean"))
    if not path.is_file() or not read_table(path).equals(table):
        write_table(table, path)
    return path


class XrayPart(DatasetPart):
    name, study_key = "xray", "xray"

    @property
    def dataset(self) -> str:
        """The registered dataset the part reads (``xray.source``), also its short name in file names and run labels."""
        return self.study.source

    short = dataset

    def prepare(self) -> None:
        self.prepare_split()
        d = self.study.degradation
        degraded = degrade_xray(self.manifest["split"], self.out / "degraded_xray", d.photons, d.mode, d.size, seed=d.seed,
                                device=self.config.device)
        self.cohort = classifier_cohort(self.split, degraded, self.out / "data" / "xray_classifier.parquet")

    def levels(self) -> list[str]:
        d = self.study.degradation
        return [level_name(d.mode, p) for p in d.photons]

    def downstream_specs(self) -> dict[str, RunSpec]:
        c, d = self.study.classifier, self.study.degradation
        clf = resolve_config(cohort=str(self.cohort), input="images", model=c.model, labels=self.study.labels,
                             image_size=c.image_size or d.size, weights=c.weights, pixel_scaling=c.pixel_scaling, batch_size=c.batch_size, hidden=c.hidden, dropout=c.dropout, seed=c.seed, optim=c.optim, loop=c.loop)
        self.classifier = TRAIN_CLASSIFIER.spec(clf, {"cohort": clf.cohort}, device=self.config.device, label=f"{self.short}-classifier")
        return {"classifier": self.classifier}

    def run_config(self, kind: str, level: str, **extra) -> ReconstructorRunConfig:
        return super().run_config(kind, level, image_size=self.study.degradation.size, **extra)

    def mitigation_downstream(self) -> tuple[str, dict, RunSpec]:
        """(task, run-config fields, model run) of the frozen model mitigation fine-tunes against: the classifier."""
        clf = self.runs.run_dir(self.classifier)
        return "classification", {"classifier_run": str(clf), "labels": self.study.labels}, self.classifier

    @functools.cached_property
    def gradcam_target(self) -> tuple[str, str] | None:
        """(finding, image id) of the Grad-CAM figure: the finding whose positive test images the clean classifier
        scores highest above its mean, and its highest-scored positive test image; None without a positive. Read once
        the classifier has finished (the scoring runs keep this image; the figure draws it)."""
        from ...training.classify import load_classifier

        _, config = load_classifier(self.runs.run_dir(self.classifier))
        clean = self.clean_scores().query("split == 'test'")
        candidates = [k for k in config.labels if clean[f"y_{k}"].eq(1).any()]
        if not candidates:
            return None
        label = max(candidates, key=lambda k: clean.loc[clean[f"y_{k}"] == 1, f"p_{k}"].mean() - clean[f"p_{k}"].mean())
        return label, str(clean.loc[clean[f"y_{label}"] == 1].sort_values(f"p_{label}", ascending=False)["image_id"].iloc[0])

    def scoring_specs(self, recon: dict[Key, RunSpec]) -> dict[Key, dict[str, RunSpec]]:
        target = self.gradcam_target
        keep = [target[1]] if target else []  # the Grad-CAM image's reconstructions are kept for the figure
        return {key: {"classifier": predict_spec(self.runs, self.classifier, str(self.cohort), spec, self.config.device,
                                                 f"score-{spec.label}", keep)} for key, spec in recon.items()}

    def analyse(self, recon: dict[Key, RunSpec], scoring: dict[Key, dict[str, RunSpec]]) -> PartOutputs:
        a, out = self.config.analysis, PartOutputs()
        clean = self.clean_scores()
        thresholds, labels = self.thresholds(clean, out)
        attributes = a.attributes
        scores = {}
        for key in recon:
            scored = pd.read_parquet(self.runs.output(scoring[key]["classifier"], "scored"))
            scores[key] = with_study_attributes(scored, self.split)
            classifier_shift(self.dataset, key, clean, scores[key], labels, attributes, thresholds, a, out)
            out.performance.append(quality_rows(self.dataset, key, self.reconstructed_table(scoring[key])))
        for key, reference, role in mitigation_references(scores):  # primary: the same-budget fine-tune; secondary: the original
            against = PartOutputs()
            classifier_shift(self.dataset, key, scores[reference], scores[key], labels, attributes, thresholds, a, against)
            out.versus_standard += [rows.assign(reference=reference[2], comparison=role) for rows in against.shift]
        return out


__all__ = ["XrayPart", "classifier_cohort", "level_name"]

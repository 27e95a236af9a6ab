"""What the two datasets of Study 2 share: reconstructor run specs, image-quality rows and the classifier shift.

A *part* (:class:`radfair.studies.reconstruction.xray.XrayPart`, :class:`...mri.MriPart`) prepares its data,
names its runs (downstream models, one reconstructor per (kind, level), scoring of each reconstruction) and
turns their outputs into rows of ``bias_shift`` and ``performance``. Reconstructions are keyed by
``(reconstructor, level, mitigation)``; the standard training is ``mitigation = "standard"``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ...execution import RunSpec, RunStore
from ...training.reconstruct_run import TRAIN_RECONSTRUCTOR, ReconstructorRunConfig
from .analysis import FAIRNESS_METRICS, VARIANTS, headline_attributes, paired_shift

Key = tuple[str, str, str]  # (reconstructor, level, mitigation)
STANDARD = "standard"
#: The same-budget standard fine-tune (reconstruction loss only, same epochs as the mitigated runs).
FINETUNE = "standard-finetune"


def mitigation_references(keys) -> list[tuple[tuple, tuple, str]]:
    """(mitigated key, reference key, role) for every mitigated reconstruction among ``keys`` (reconstructor, level,
    mitigation): the **primary** reference is the same-budget standard fine-tune (the strategy's effect is not
    confounded with the extra epochs), the **secondary** the original standard reconstruction. Without a fine-tune
    run, the original is primary."""
    keys = list(keys)
    out = []
    for kind, level, mitigation in keys:
        if mitigation in (STANDARD, FINETUNE):
            continue
        finetune, standard = (kind, level, FINETUNE), (kind, level, STANDARD)
        if finetune in keys:
            out += [((kind, level, mitigation), finetune, "primary"), ((kind, level, mitigation), standard, "secondary")]
        else:
            out.append(((kind, level, mitigation), standard, "primary"))
    return out
STUDY_ATTRIBUTES = ("age_binary", "race_merged")


@dataclass
class PartOutputs:
    shift: list[pd.DataFrame] = field(default_factory=list)
    performance: list[pd.DataFrame] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    versus_standard: list[pd.DataFrame] = field(default_factory=list)  # mitigated − reference reconstruction, paired


def reconstructor_spec(config: ReconstructorRunConfig, device: str, label: str) -> RunSpec:
    return TRAIN_RECONSTRUCTOR.spec(config, {"degraded": config.degraded}, device=device, label=label)


class DatasetPart:
    """What both parts share: the saved split, the reconstructor runs of every (kind, level), clean scores and
    thresholds. Subclasses set ``dataset``, ``name`` (xray | mri), ``short`` (file names) and ``study_key``."""

    dataset = name = short = study_key = ""

    def __init__(self, config, out: Path, store: Path, log=print):
        self.config, self.study, self.out, self.store, self.log = config, getattr(config, self.study_key), out, store, log
        self.runs = RunStore(store)

    def prepare_split(self) -> None:
        from .data import prepare_split

        self.manifest = prepare_split(self.config, self.out, self.name, self.study.source, self.log)
        self.split = pd.read_parquet(self.manifest["split"])
        self.degraded_table = self.out / f"degraded_{self.name}" / "degraded.parquet"

    def run_config(self, kind: str, level: str, **extra) -> ReconstructorRunConfig:
        t, r = self.study.training, self.study.reconstructors[kind]  # kind-specific settings first (the paper's appendix)
        # no reconstructions written by the training run: the scoring runs reconstruct the test images into scratch
        return ReconstructorRunConfig(degraded=str(self.degraded_table), level=level, split_cohort=self.manifest["split"],
                                      reconstructor=r.network(), batch_size=r.batch_size or t.batch_size, seed=t.seed,
                                      loop=r.loop or t.loop_for(kind), reconstruct_splits=(), **extra)

    def reconstructor_specs(self) -> dict[Key, RunSpec]:
        return {(kind, level, STANDARD): reconstructor_spec(self.run_config(kind, level), self.config.device,
                                                            f"{self.short}-{kind}-{level}")
                for kind in self.study.reconstructors for level in self.levels()}

    def reconstructed_table(self, scoring: dict[str, RunSpec]) -> Path:
        """The ``reconstructed`` table (PSNR/SSIM of every test image, the kept examples' paths) of one
        reconstruction's scoring run (``scoring``: this part's task -> spec for that reconstruction; one run)."""
        return self.runs.output(next(iter(scoring.values())), "reconstructed")

    def clean_scores(self) -> pd.DataFrame:
        return with_study_attributes(pd.read_parquet(self.runs.output(self.classifier, "scored")), self.split)

    def thresholds(self, clean: pd.DataFrame, out: PartOutputs) -> tuple[Path, list[str]]:
        """Thresholds on the clean validation scores; labels without one are named in the notes."""
        from .analysis import clean_thresholds

        a = self.config.analysis
        path, labels, undefined = clean_thresholds(clean, self.study.labels, a.threshold,
                                                   self.out / f"thresholds_clean_val_{self.dataset}.csv")
        out.notes += [f"{self.dataset}/{label}: clean validation rows hold one class only; no threshold, label not analysed"
                      for label in undefined]
        return path, labels


def with_study_attributes(table: pd.DataFrame, split: pd.DataFrame) -> pd.DataFrame:
    """Add the study's derived attributes (age at the median, merged race) from the saved split by image_id."""
    add = [c for c in STUDY_ATTRIBUTES if c not in table.columns]
    return table.merge(split[["image_id", *add]], on="image_id", how="left") if add else table


def quality_rows(dataset: str, key: Key, reconstructed: Path) -> pd.DataFrame:
    """PSNR and SSIM of the test reconstructions, with the degraded input's as the baseline."""
    quality = pd.read_parquet(reconstructed).query("split == 'test'")
    kind, level, mitigation = key
    return pd.DataFrame([{"dataset": dataset, "reconstructor": kind, "level": level, "mitigation": mitigation, "task": "image",
                          "metric": metric, "baseline": float(quality[f"{metric}_degraded"].mean()),
                          "reconstructed": float(quality[metric].mean()),
                          "delta": float((quality[metric] - quality[f"{metric}_degraded"]).mean())}
                         for metric in ("psnr", "ssim")])


def classifier_shift(dataset: str, key: Key, clean: pd.DataFrame, recon: pd.DataFrame, labels: list[str], attributes: list[str],
                     thresholds: Path, analysis, out: PartOutputs) -> None:
    """Paired shift of AUROC (performance) and the fairness metrics (bias_shift) for one reconstruction."""
    comparison, warned = paired_shift(clean, recon, labels, attributes, thresholds, analysis.bootstrap, analysis.seed, analysis.level,
                                     analysis.p_value)
    kind, level, mitigation = key
    out.notes += [f"{dataset}/{kind}/{level}/{mitigation}: {w}" for w in warned]
    comparison = comparison.assign(dataset=dataset, reconstructor=kind, level=level, mitigation=mitigation)
    out.shift.append(comparison[comparison["metric"].isin(FAIRNESS_METRICS)])
    auc = comparison[comparison["metric"] == "auc"]
    out.performance.append(auc.assign(task=auc["label"])[["dataset", "reconstructor", "level", "mitigation", "task", "metric",
                                                          "baseline", "reconstructed", "delta", "ci_low", "ci_high", "p_value"]])


__all__ = ["DatasetPart", "FINETUNE", "Key", "PartOutputs", "STANDARD", "VARIANTS", "classifier_shift", "headline_attributes", "mitigation_references", "quality_rows", "reconstructor_spec",
           "with_study_attributes"]

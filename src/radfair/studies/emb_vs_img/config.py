"""Study 1 configuration (embeddings paper): datasets x arms x seeds on one saved split per dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from ...config import StrictModel, load_yaml_config
from ...data import registry
from ...training.loop import LoopConfig
from ...training.steps import OptimConfig

DATASETS = ("mimic", "chexpert", "all")
EMBEDDING_MODELS = ("mlp", "linear")  # arms that read the embedding store; the others read the images
ATTRIBUTES = ("sex", "age_group", "race", "insurance")


class SyntheticReleases(StrictModel):
    """Generate synthetic releases into ``releases`` first (if that folder does not exist yet)."""

    patients: int = 2000
    seed: int = 0
    image_size: int = 64
    mri_patients: int = 40
    nih_patients: int = 100  # the NIH ChestX-ray14-format release (radfair synth --nih-patients)


class ArmConfig(StrictModel):
    """One model family (the paper's 'emb' and 'img' arms)."""

    model: str
    image_size: int = 224
    batch_size: int = 48
    eval_batch_size: int = 256
    hidden: list[int] = [768, 256]
    dropout: float = 0.3
    weights: str | None = None
    optim: OptimConfig = OptimConfig()
    loop: LoopConfig = LoopConfig(epochs=100, patience=5)
    ensemble: bool | None = Field(None, description="train the seeds together as one batched ensemble, one run per dataset "
                                                    "(embedding models only; their default); false: one run per seed")

    @field_validator("ensemble")
    @classmethod
    def _ensemble_on_embeddings(cls, value: bool | None, info) -> bool | None:
        if value and info.data.get("model") not in EMBEDDING_MODELS:
            raise ValueError(f"ensemble: true needs an embedding model {list(EMBEDDING_MODELS)}; "
                             f"{info.data.get('model')} trains one seed per run")
        return value

    @property
    def on_embeddings(self) -> bool:
        return self.model in EMBEDDING_MODELS

    @property
    def trains_together(self) -> bool:
        """Whether this arm's seeds train together (``ensemble``, default: on embeddings)."""
        return self.on_embeddings if self.ensemble is None else self.ensemble


class SplitConfig(StrictModel):
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
    seed: int = 0


class EmbVsImgConfig(StrictModel):
    name: str = "emb-vs-img"
    releases: str
    purpose: str | None = None  # why this config departs from the paper (e.g. a demo); each departure is a listed deviation
    embeddings: str | None = Field(None, description="embedding store folder (CXR Foundation's, or one written by `radfair embed` "
                                                      "for any other dataset); default: the releases folder")
    synthetic: SyntheticReleases | None = None
    datasets: list[str] = list(DATASETS)  # any registered X-ray dataset (a union such as "all" is split part by part)
    roots: dict[str, str] = {}  # a dataset's own --root (a release folder, or the manifest file); default: releases
    seeds: list[int] = [0, 1, 2, 3, 4]
    labels: list[str] | None = None
    uncertain: Literal["zeros", "ones", "ignore"] = "zeros"
    missing_embeddings: Literal["drop", "error"] = "drop"
    split: SplitConfig = SplitConfig()
    attributes: list[str] = list(ATTRIBUTES)
    # a dataset's own attributes (e.g. the paper's: insurance for MIMIC only, not for ALL); default: ``attributes``
    attributes_by_dataset: dict[str, list[str]] = {}
    threshold: Literal["f1", "balanced", "youden"] = "f1"
    level: float = 0.95
    bootstrap: int = Field(1000, ge=0, description="patient-level replicates (with seed resampling) for intervals and the arm comparison")
    bootstrap_seed: int = 0
    threshold_in_bootstrap: bool = False  # re-choose each run's thresholds on resampled validation patients per replicate
    averaging: Literal["seed-mean", "per-seed"] = "seed-mean"  # the paper's Table 4: gap of the seed-mean disparities
    counting: Literal["sign", "strict-extreme"] = "sign"  # the paper's Table 4: (un)favourable by the sign of the disparity
    summary_exclude: list[str] = ["no_finding"]
    arms: dict[str, ArmConfig] = {"emb": ArmConfig(model="mlp"), "img": ArmConfig(model="densenet121")}
    device: str = "cpu"
    jobs: int = Field(1, description="local executor: runs in parallel processes (the CLI's --jobs overrides)")

    @field_validator("datasets")
    @classmethod
    def _registered(cls, value: list[str]) -> list[str]:
        return [registry.check_name(name, "xray") for name in value]

    def root_of(self, source: str) -> str:
        return self.roots.get(source, self.releases)

    def attributes_of(self, dataset: str) -> list[str]:
        return self.attributes_by_dataset.get(dataset, self.attributes)

    def resolved(self) -> EmbVsImgConfig:
        """Paths made absolute (relative to the working directory)."""
        updates = {"releases": str(Path(self.releases).resolve()), "roots": {k: str(Path(v).resolve()) for k, v in self.roots.items()}}
        if self.embeddings:
            updates["embeddings"] = str(Path(self.embeddings).resolve())
        return self.model_copy(update=updates)


def load_config(path: str | Path) -> EmbVsImgConfig:
    return load_yaml_config(EmbVsImgConfig, path).resolved()

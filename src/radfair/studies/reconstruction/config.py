"""Study 2 configuration (reconstruction paper): degradation levels x reconstructors, frozen downstream models."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from ...config import StrictModel, load_yaml_config
from ...data.schema import STUDY2_LABELS
from ...training.loop import LoopConfig
from ...training.reconstruction import ReconstructorConfig
from ...training.steps import OptimConfig
from ..emb_vs_img.config import SyntheticReleases


class Study2Split(StrictModel):
    """Patient-level 70/10/20, then the train patients 70/30 into reconstructor / classifier training (paper §3)."""

    fractions: tuple[float, float, float] = (0.7, 0.1, 0.2)
    reconstruction_share: float = 0.7
    seed: int = 0


class XrayDegradation(StrictModel):
    mode: Literal["physical", "paper"] = "physical"
    photons: list[float] = [100_000, 10_000, 3_000]
    size: int = 256
    seed: int = 0


class DownstreamClassifier(StrictModel):
    model: str = "densenet121"
    batch_size: int = 48
    hidden: list[int] = [768, 256]
    dropout: float = 0.3
    optim: OptimConfig = OptimConfig()
    loop: LoopConfig = LoopConfig(epochs=100, patience=5)
    seed: int = 0


class ReconstructorTraining(StrictModel):
    batch_size: int = 16
    loop: LoopConfig = LoopConfig(epochs=100, patience=5)
    seed: int = 0


class XrayStudy(StrictModel):
    source: Literal["chexpert"] = "chexpert"
    labels: list[str] = list(STUDY2_LABELS)
    degradation: XrayDegradation = XrayDegradation()
    classifier: DownstreamClassifier = DownstreamClassifier()
    reconstructors: dict[str, ReconstructorConfig] = {k: ReconstructorConfig(kind=k) for k in ("unet", "pix2pix", "irsde")}
    training: ReconstructorTraining = ReconstructorTraining()


class Analysis(StrictModel):
    attributes: list[str] = ["sex", "age_binary", "race"]
    race_merge_small: bool = False
    merge_below: int = 50
    threshold: Literal["balanced", "f1", "youden"] = "balanced"
    bootstrap: int = 1000
    seed: int = 0
    level: float = 0.95


class ReconstructionConfig(StrictModel):
    name: str = "reconstruction"
    releases: str
    synthetic: SyntheticReleases | None = None
    split: Study2Split = Study2Split()
    xray: XrayStudy | None = XrayStudy()
    analysis: Analysis = Analysis()
    device: str = "cpu"
    jobs: int = 1

    def resolved(self) -> ReconstructionConfig:
        return self.model_copy(update={"releases": str(Path(self.releases).resolve())})


def load_config(path: str | Path) -> ReconstructionConfig:
    return load_yaml_config(ReconstructionConfig, path).resolved()

"""Study 2 configuration (reconstruction paper): degradation levels x reconstructors, frozen downstream models."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import field_validator, model_validator

from ...config import StrictModel, load_yaml_config
from ...data import registry
from ...data.schema import STUDY2_LABELS
from ...training.loop import LoopConfig
from ...training.mri_downstream import MRI_LABELS
from ...training.reconstruction import ReconstructorConfig
from ...training.steps import OptimConfig
from ...training.volumes import DownstreamSlices
from ..emb_vs_img.config import SyntheticReleases


class Study2Split(StrictModel):
    """Patient-level 70/10/20, then the train patients 70/30 into reconstructor / classifier training (paper §3.1).

    ``shared_training`` names the parts (``xray``, ``mri``) whose train patients train both the reconstructors and
    the downstream models (paper §3.1: "For UCSF-PDGM, the same training data is for both tasks")."""

    fractions: tuple[float, float, float] = (0.7, 0.1, 0.2)
    reconstruction_share: float = 0.7
    shared_training: list[Literal["xray", "mri"]] = []
    seed: int = 0


class XrayDegradation(StrictModel):
    mode: Literal["physical", "paper"] = "physical"
    photons: list[float] = [100_000, 10_000, 3_000]
    size: int = 256
    seed: int = 0


class DownstreamClassifier(StrictModel):
    model: str = "densenet121"
    image_size: int | None = None  # None: the degradation size (the paper: 224, TorchXRayVision's input)
    weights: str | None = None  # a local state-dict file (e.g. ImageNet DenseNet-121); None: random initialisation
    pixel_scaling: Literal["standard", "xrv"] = "standard"  # xrv: TorchXRayVision's [-1024, 1024] (the paper's)
    batch_size: int = 48
    hidden: list[int] = [768, 256]
    dropout: float = 0.3
    optim: OptimConfig = OptimConfig()
    loop: LoopConfig = LoopConfig(epochs=100, patience=5)
    seed: int = 0


class StudyReconstructor(ReconstructorConfig):
    """A reconstructor of a study part: its network (:class:`ReconstructorConfig`) plus the training settings that
    differ by model kind in the paper (appendix "Reconstruction Hyperparameters": batch 16/32/8, epochs 20/200/40
    or 300); ``None`` falls back to the part's ``training`` block."""

    batch_size: int | None = None
    loop: LoopConfig | None = None

    def network(self) -> ReconstructorConfig:
        return ReconstructorConfig.model_validate(self.model_dump(exclude={"batch_size", "loop"}))


def _reconstructors() -> dict[str, StudyReconstructor]:
    return {k: StudyReconstructor(kind=k) for k in ("unet", "pix2pix", "irsde")}


class ReconstructorTraining(StrictModel):
    batch_size: int = 16
    loop: LoopConfig = LoopConfig(epochs=100, patience=5)
    epochs_by_reconstructor: dict[str, int] = {}  # e.g. {irsde: 8}: a longer schedule for one reconstructor
    seed: int = 0

    def loop_for(self, name: str) -> LoopConfig:
        if name not in self.epochs_by_reconstructor:
            return self.loop
        return self.loop.model_copy(update={"epochs": self.epochs_by_reconstructor[name]})


def study2_labels(source: str) -> list[str]:
    """A dataset's Study 2 findings: its labels without No Finding and Support Devices (CheXpert: the paper's 12)."""
    return [name for name in registry.get(source, "source").label_names() if name not in ("support_devices", "no_finding")]


class XrayStudy(StrictModel):
    """The X-ray part: any registered X-ray dataset (``source``; CheXpert in the paper) read from ``root``
    (default: the config's ``releases``; a manifest names its file). ``labels`` default: the dataset's findings
    without No Finding and Support Devices (a manifest must list them)."""

    source: str = "chexpert"
    root: str | None = None
    labels: list[str] = list(STUDY2_LABELS)
    degradation: XrayDegradation = XrayDegradation()
    classifier: DownstreamClassifier = DownstreamClassifier()
    reconstructors: dict[str, StudyReconstructor] = _reconstructors()
    training: ReconstructorTraining = ReconstructorTraining()

    @field_validator("source")
    @classmethod
    def _registered(cls, value: str) -> str:
        return registry.check_name(value, "xray")

    @model_validator(mode="after")
    def _dataset_labels(self) -> XrayStudy:
        if "labels" not in self.model_fields_set and self.source != "chexpert":
            self.labels = study2_labels(self.source)
            if not self.labels:
                raise ValueError(f"source {self.source!r} declares no labels; list the findings in xray.labels")
        return self


class MriDegradation(StrictModel):
    """Radial k-space undersampling (paper: accelerations 4, 8, 16); golden-angle spokes by default (REFERENCE §3)."""

    mask: Literal["golden_angle", "paper"] = "golden_angle"
    accelerations: list[float] = [4, 8, 16]
    seed: int = 0


class SliceClassifierSettings(StrictModel):
    """UCSF-PDGM slice classifier (paper appendix: ResNet-50, batch 16, Adam 1e-4, 20 epochs)."""

    model: Literal["resnet50", "resnet18"] = "resnet50"
    weights: str | None = None  # a local state-dict file (ImageNet ResNet-50 in the paper); None: random initialisation
    batch_size: int = 16
    optim: OptimConfig = OptimConfig(lr=1e-4, weight_decay=0.0)
    loop: LoopConfig = LoopConfig(epochs=20, patience=5)
    seed: int = 0


class SegmenterSettings(StrictModel):
    """Tumour U-Net (paper appendix: batch 8, Adam 1e-3, 20 epochs, 0.5 Dice + 0.5 L1)."""

    widths: list[int] = [64, 128, 256, 512]
    bottleneck: int = 1024
    norm: bool = True  # BatchNorm after every convolution (without it the segmenter diverges; models/reconstruction/unet.py)
    weights: str | None = None  # a local state dict of this U-Net to start from (no ImageNet U-Net in radfair's layout)
    pixel_loss: Literal["bce", "l1"] = "l1"  # the paper: L1 on the sigmoid output
    dice_weight: float = 0.5
    # a slice empty in truth and prediction: NaN, left out of the patient's mean (the paper is silent; see
    # radfair.training.segmenter.SegmenterRunConfig)
    empty_slices: Literal["both_empty_nan", "ignore_empty", "empty_is_one"] = "both_empty_nan"
    batch_size: int = 8
    optim: OptimConfig = OptimConfig(lr=1e-3, weight_decay=0.0)
    loop: LoopConfig = LoopConfig(epochs=20, patience=5)
    seed: int = 0


class MriStudy(StrictModel):
    """UCSF-PDGM: undersampled FLAIR volumes, slice reconstructors, frozen grade/type classifier and segmenter."""

    source: str = "ucsf-pdgm"  # a registered MRI dataset with y_high_grade / y_glioblastoma labels and mask_path
    labels: list[str] = list(MRI_LABELS)
    degradation: MriDegradation = MriDegradation()
    slices: DownstreamSlices = DownstreamSlices()  # the downstream models' size, training and inference slices (paper defaults)
    classifier: SliceClassifierSettings = SliceClassifierSettings()
    segmenter: SegmenterSettings = SegmenterSettings()
    reconstructors: dict[str, StudyReconstructor] = _reconstructors()
    training: ReconstructorTraining = ReconstructorTraining()

    @field_validator("source")
    @classmethod
    def _registered(cls, value: str) -> str:
        return registry.check_name(value, "mri")


class MitigationStudy(StrictModel):
    """Fine-tuning the reconstructors for downstream fairness (paper §3.5): every strategy x λ of the sweep on
    validation, λ chosen by :func:`radfair.mitigation.choose_weight`, the chosen run scored on test like the rest.

    ``datasets`` names the parts fine-tuned by their dataset (``xray.source``, ``mri.source``): the X-ray part
    (CheXpert in the paper) against its frozen classifier (λ on validation AUROC and
    EODD), UCSF-PDGM against the frozen tumour segmenter (λ on validation Dice and ΔDice; the mitigated volumes are
    then scored by both frozen UCSF models). ``levels`` may name levels of either part; a part none of whose levels
    is named is fine-tuned at its middle level. ``max_auroc_drop`` bounds the validation AUROC loss (classifier
    downstream), ``max_dice_drop`` the validation mean Dice loss (segmenter downstream).
    """

    datasets: list[str] = ["chexpert"]  # registered datasets; each must be a part of the study (checked when it runs)
    strategies: list[Literal["reweighting", "eodd", "adversarial"]] = ["reweighting", "eodd", "adversarial"]
    weights: list[float] = [1e-3, 1e-2, 1e-1, 1.0]  # λ_fair sweep (log scale); reweighting has no λ
    weights_by_dataset: dict[str, list[float]] = {}  # a dataset's own sweep (else weights)
    reconstructors: list[str] | None = None  # None: every reconstructor of the part
    levels: list[str] | None = None  # None: each part's middle level (CheXpert: the paper's fairness level)
    attributes: list[str] | None = None  # None: the analysis attributes without the variants (race_merged)
    epochs: int = 10
    patience: int | None = 3
    batch_size: int = 16
    settings: dict = {}  # further MitigationConfig fields (temperature, momentum, adversary_hidden, ...)
    lambda_from: str | None = None  # "unet": λ chosen once on that reconstructor and reused (the paper); None: per reconstructor
    max_psnr_drop_db: float = 0.5
    max_auroc_drop: float = 0.01
    max_dice_drop: float = 0.01

    @field_validator("datasets")
    @classmethod
    def _registered(cls, value: list[str]) -> list[str]:
        return [registry.check_name(name) for name in value]

    @field_validator("weights_by_dataset")
    @classmethod
    def _registered_keys(cls, value: dict[str, list[float]]) -> dict[str, list[float]]:
        for name in value:
            registry.check_name(name)
        return value


class ConfirmatoryFamily(StrictModel):
    """The rows of ``bias_shift`` that answer the study's question (paper §3.4, "does reconstruction shift
    downstream fairness?"): Holm and BH are applied within them; every other row is exploratory (BH only).

    Defaults: the worst-case EODD of every finding and the segmentation SER, per attribute and reconstructor,
    at each dataset's middle degradation level (10,000 photons, R = 8 in the paper), standard reconstructors
    only. Redundant metrics stay out: for a binary attribute the gap is exactly 2 EOP, and ``eodd_mean`` sits
    beside ``eodd_worst``.
    """

    metrics: list[str] = ["eodd_worst", "ser"]
    levels: Literal["middle", "all"] | list[str] = "middle"
    mitigation: list[str] = ["standard"]
    alpha: float = 0.05


class Analysis(StrictModel):
    """The shift analysis. ``attributes`` may name ``race_merged``, the race scheme's merged variant (Table 5 scheme:
    AI/AN and NH/PI within Other, the paper's Figures 18-19): analysed as its own attribute, it is a re-grouping of
    race, so it stays out of the confirmatory family, the pooled Tables 1-3, Figures 3-5 and the mitigation losses,
    and has its own Figures 18-19. ``race_scheme``: how the X-ray part's race is grouped
    (:data:`radfair.data.race.RACE_SCHEMES`; ``table5``: the paper's Table 5)."""

    attributes: list[str] = ["sex", "age_binary", "race", "race_merged"]
    race_scheme: Literal["table5", "six-groups"] = "table5"
    # "patient-median": each patient's age against the median over patients, <= / > (the paper: <= 62 / > 62 on
    # CheXpert); "image-median": the median over images, >= / < (radfair's earlier rule)
    age_split: Literal["patient-median", "image-median"] = "patient-median"
    p_value: Literal["bootstrap-normal", "bootstrap-count"] = "bootstrap-normal"
    confirmatory: ConfirmatoryFamily = ConfirmatoryFamily()
    threshold: Literal["balanced", "f1", "youden"] = "balanced"
    bootstrap: int = 1000
    seed: int = 0
    level: float = 0.95


class ReconstructionConfig(StrictModel):
    name: str = "reconstruction"
    releases: str
    purpose: str | None = None  # why this config departs from the paper (e.g. a demo); each departure is a listed deviation
    synthetic: SyntheticReleases | None = None
    split: Study2Split = Study2Split()
    xray: XrayStudy | None = XrayStudy()
    mri: MriStudy | None = MriStudy()
    mitigation: MitigationStudy | None = None
    analysis: Analysis = Analysis()
    device: str = "cpu"
    jobs: int = 1

    def resolved(self) -> ReconstructionConfig:
        updates = {"releases": str(Path(self.releases).resolve())}
        if self.xray is not None and self.xray.root:
            updates["xray"] = self.xray.model_copy(update={"root": str(Path(self.xray.root).resolve())})
        return self.model_copy(update=updates)

    def effective(self) -> ReconstructionConfig:
        """What runs: every reconstructor's batch size and loop filled in from its part's ``training`` fallback, the X-ray
        classifier's image size from the degradation size."""
        updates = {}
        for name in ("xray", "mri"):
            part = getattr(self, name)
            if part is None:
                continue
            t = part.training
            filled = {k: r.model_copy(update={"batch_size": r.batch_size or t.batch_size, "loop": r.loop or t.loop_for(k)})
                      for k, r in part.reconstructors.items()}
            updates[name] = part.model_copy(update={"reconstructors": filled})
            if name == "xray" and part.classifier.image_size is None:
                classifier = part.classifier.model_copy(update={"image_size": part.degradation.size})
                updates[name] = updates[name].model_copy(update={"classifier": classifier})
        return self.model_copy(update=updates)

    def root_of(self, part: str) -> str:
        """The folder (or manifest file) a part's dataset is read from: its own ``root``, else ``releases``."""
        study = getattr(self, part, None)
        return getattr(study, "root", None) or self.releases


def load_config(path: str | Path) -> ReconstructionConfig:
    return load_yaml_config(ReconstructionConfig, path).resolved()

"""The papers' protocols as data: every setting the papers state (with its section), and the deviations of a config.

``PAPER_SETTINGS[study]`` is transcribed from ``../shared/papers`` (Study 1 = ``emb-vs-img``, the embeddings
paper; Study 2 = ``reconstruction``, its appendix "Diagnostic Hyperparameters" and "Reconstruction
Hyperparameters"). Where a paper is silent the reference code's value is used and the source says so.
:func:`deviations` compares a config's resolved settings with the table and adds the differences no setting can
remove (``KNOWN``): each deviation names the setting, the paper's value, radfair's value and why. Both studies
write the list into ``study.json`` and ``plan.json``; the report shows it ("Deviations from the paper").
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from ..data.schema import STUDY2_LABELS

_MISSING = object()


@dataclass(frozen=True)
class PaperSetting:
    setting: str  # dotted path into the config's JSON dump ("seeds#" = the list's length)
    paper: object
    source: str


def _s(setting, paper, source):
    return PaperSetting(setting, paper, source)


_DIAG, _REC = "App. Diagnostic Hyperparameters", "App. Reconstruction Hyperparameters"
_ORIGINAL = "App. Reconstruction Hyperparameters: 'adopted unchanged from the original' publication"


def _reconstructors(part: str, irsde_epochs: int) -> list[PaperSetting]:
    r = f"{part}.reconstructors"
    return [_s(f"{r}.unet.optim.lr", 1e-3, _REC), _s(f"{r}.unet.batch_size", 16, _REC), _s(f"{r}.unet.loop.epochs", 20, _REC),
            _s(f"{r}.unet.widths", [64, 128, 256, 512], _ORIGINAL + " (U-Net, Ronneberger 2015)"),
            _s(f"{r}.unet.bottleneck", 1024, _ORIGINAL + " (U-Net)"),
            _s(f"{r}.pix2pix.disc_optim.lr", 2e-4, _REC + " (generator and discriminator)"),
            _s(f"{r}.pix2pix.batch_size", 32, _REC), _s(f"{r}.pix2pix.loop.epochs", 200, _REC),
            _s(f"{r}.pix2pix.l1_weight", 100.0, _ORIGINAL + " (Pix2Pix, Isola 2017)"),
            _s(f"{r}.pix2pix.loop.schedule", "linear-decay", _ORIGINAL + " (Pix2Pix: constant, then linear decay to 0 over the second half)"),
            _s(f"{r}.irsde.optim.lr", 1e-4, _REC), _s(f"{r}.irsde.batch_size", 8, _REC),
            _s(f"{r}.irsde.loop.epochs", irsde_epochs, _REC + f" ({irsde_epochs} epochs on {'CheXpert' if part == 'xray' else 'UCSF-PDGM'})"),
            _s(f"{r}.irsde.loop.schedule", "cosine", _REC),
            _s(f"{r}.irsde.sde_steps", 100, _ORIGINAL + " (IR-SDE, Luo 2023: T = 100)"),
            _s(f"{r}.irsde.max_sigma", 10 / 255, _ORIGINAL + " (IR-SDE: λ = 10/255)"),
            _s(f"{r}.irsde.sde_eps", 0.005, _ORIGINAL + " (IR-SDE)")]


PAPER_SETTINGS: dict[str, list[PaperSetting]] = {
    "emb-vs-img": [
        _s("datasets", ["mimic", "chexpert", "all"], "§Data, Table 1"),
        _s("split.fractions", [0.8, 0.1, 0.1], "§Models and Training, Table 2"),
        _s("seeds#", 5, "§Models and Training: five runs with different seeds"),
        _s("attributes", ["sex", "age_group", "race", "insurance"], "Table 1"),
        _s("attributes_by_dataset.all", ["sex", "age_group", "race"], "Tables 1 and 4: insurance for MIMIC only (CXP has none; not for ALL)"),
        _s("threshold", "f1", "§Models and Training: per-label thresholds optimising F1"),
        _s("level", 0.95, "§Models and Training: 95% confidence interval"),
        _s("averaging", "seed-mean", "Table 4 (reference code: gap of the seed-mean disparities)"),
        _s("counting", "sign", "Table 4 (reference code: (un)favourable by the sign of the mean disparity)"),
        *[x for arm, model in (("emb", "mlp"), ("img", "densenet121")) for x in (
            _s(f"arms.{arm}.model", model, "§Models and Training"),
            _s(f"arms.{arm}.hidden", [768, 256], "§Models and Training: two hidden layers, 768 and 256 units"),
            _s(f"arms.{arm}.dropout", 0.3, "§Models and Training"),
            _s(f"arms.{arm}.batch_size", 48, "§Models and Training"),
            _s(f"arms.{arm}.optim.name", "adam", "§Models and Training"),
            _s(f"arms.{arm}.optim.lr", 1e-4, "§Models and Training"),
            _s(f"arms.{arm}.optim.weight_decay", 1e-5, "§Models and Training"),
            _s(f"arms.{arm}.loop.schedule", "cosine", "§Models and Training: cosine decay"),
            _s(f"arms.{arm}.loop.patience", 5, "§Models and Training: early stopping after five epochs"))],
        _s("arms.img.image_size", 224, "§Compute cost: DenseNet-121, 224×224"),
    ],
    "reconstruction": [
        _s("split.fractions", [0.7, 0.1, 0.2], "§3.1"),
        _s("split.reconstruction_share", 0.7, "§3.1: CheXpert train 70/30 reconstruction / classification"),
        _s("split.shared_training", ["mri"], "§3.1: 'For UCSF-PDGM, the same training data is for both tasks'"),
        _s("xray.source", "chexpert", "§3.1"),
        _s("xray.labels", list(STUDY2_LABELS), "§3.1: 12 findings (no Support Devices, no No Finding)"),
        _s("xray.degradation.photons", [100000.0, 10000.0, 3000.0], "§3.2"),
        _s("xray.degradation.size", 256, _REC + ": resized to 256x256"),
        _s("xray.classifier.model", "densenet121", "§3.3"),
        _s("xray.classifier.image_size", 224, _DIAG + ": TorchXRayVision input 224x224"),
        _s("xray.classifier.hidden", [], _DIAG + ": TorchXRayVision DenseNet (one linear layer on the pooled features)"),
        _s("xray.classifier.pixel_scaling", "xrv", _DIAG + ": TorchXRayVision preprocessing, values scaled to [-1024, 1024]"),
        _s("xray.classifier.optim.name", "adam", _DIAG),
        _s("xray.classifier.optim.lr", 1e-3, _DIAG),
        _s("xray.classifier.optim.weight_decay", 1e-5, _DIAG),
        _s("xray.classifier.loop.epochs", 50, _DIAG),
        *_reconstructors("xray", 40),
        _s("mri.degradation.accelerations", [4.0, 8.0, 16.0], "§3.2"),
        _s("mri.slices.size", 256, _DIAG + ": resized to 256x256"),
        _s("mri.slices.train.include_empty", True, _DIAG + ": 'trained on a per-slice level using all available MRI slices'"),
        _s("mri.slices.train.slice_range", None, _DIAG + ": all slices ('All MRI slices were again used for training')"),
        _s("mri.slices.inference.include_empty", True, _DIAG + ": inference on slices 60-130 (the range, not the mask, chooses them)"),
        _s("mri.slices.inference.slice_range", [60, 130], _DIAG + ": 'Dice performance was computed using slices 60-130'"),
        _s("mri.classifier.model", "resnet50", "§3.3"),
        _s("mri.classifier.optim.lr", 1e-4, _DIAG),
        _s("mri.classifier.batch_size", 16, _DIAG),
        _s("mri.classifier.loop.epochs", 20, _DIAG),
        _s("mri.segmenter.optim.lr", 1e-3, _DIAG),
        _s("mri.segmenter.batch_size", 8, _DIAG),
        _s("mri.segmenter.loop.epochs", 20, _DIAG),
        _s("mri.segmenter.pixel_loss", "l1", _DIAG + ": Dice and L1, 0.5 each"),
        _s("mri.segmenter.dice_weight", 0.5, _DIAG),
        _s("mri.segmenter.empty_slices", "both_empty_nan", _DIAG + ": Dice per slice, then averaged per patient, then across "
           "patients; paper silent on slices empty in truth and prediction: radfair leaves them out of the mean"),
        *_reconstructors("mri", 300),
        _s("mitigation.strategies", ["reweighting", "eodd", "adversarial"], "§3.5"),
        _s("mitigation.reconstructors", None, "§4.3: every reconstructor mitigated (null = all)"),
        _s("mitigation.lambda_from", "unet", "§3.5 (λ chosen once and reused; reference code: on the U-Net)"),
        _s("mitigation.settings.temperature", 0.3, "§3.5, App.: T = 0.3"),
        _s("mitigation.settings.threshold", "fixed", "§3.5, App.: τ = 0.5"),
        _s("mitigation.settings.initial_threshold", 0.5, "§3.5, App.: τ = 0.5"),
        _s("analysis.attributes", ["sex", "age_binary", "race", "race_merged"],
           "§3.1; race_merged: App. 'Additional Fairness Results', Figs 18-19 (AI/AN and NH/PI within Other)"),
        _s("analysis.race_scheme", "table5", "Table 5: AI/AN, Asian, Black, NH/PI, Other, White"),
        _s("analysis.age_split", "patient-median", "§3.1, Tables 5-6: patients at the dataset median, <= / >"),
        _s("analysis.threshold", "balanced", "paper silent; the reference code's balanced threshold on validation"),
        _s("analysis.bootstrap", 1000, "paper silent; the reference code's 1000 replicates"),
    ],
}

_MITIGATION_DEFAULTS = {"temperature": 0.3, "threshold": "running", "initial_threshold": 0.5}


def resolve(config: dict, path: str):
    """The value at a dotted ``path`` of a config's JSON dump (``name#``: the list's length); ``_MISSING`` if absent."""
    count = path.endswith("#")
    node = config
    for part in path.rstrip("#").split("."):
        if not isinstance(node, dict) or part not in node:
            if path.startswith("mitigation.settings.") and isinstance(node, dict) and part in _MITIGATION_DEFAULTS:
                return _MITIGATION_DEFAULTS[part]
            return _MISSING
        node = node[part]
    return len(node) if count and node is not None else node


def _same(a, b) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool) and not isinstance(b, bool):
        return math.isclose(float(a), float(b), rel_tol=1e-9)
    return a == b


def resolved_settings(study: str, config: dict) -> list[dict]:
    """Every table setting with the paper's value, the config's and whether they agree (a part switched off: None)."""
    rows = []
    for entry in PAPER_SETTINGS[study]:
        value = resolve(config, entry.setting)
        rows.append({"setting": entry.setting, "paper": entry.paper, "source": entry.source,
                     "radfair": None if value is _MISSING else value,
                     "matches": None if value is _MISSING else _same(value, entry.paper)})
    return rows


@dataclass(frozen=True)
class Known:
    """A difference from the paper that no setting removes (or only under a condition on the config)."""

    setting: str
    paper: str
    radfair: str
    why: str
    applies: Callable[[dict], bool] = lambda c: True


def _part(name: str) -> Callable[[dict], bool]:
    return lambda c: c.get(name) is not None


def _unweighted(path: str) -> Callable[[dict], bool]:
    """The network's part is on and names no weights file."""
    head = path.split(".")[0]
    return lambda c: c.get(head) is not None and resolve(c, path) in (None, _MISSING)


KNOWN: dict[str, list[Known]] = {
    "emb-vs-img": [
        Known("image baselines (MIMIC, CXP)", "CheXclusion's DenseNets, trained on other splits",
              "DenseNet-121 trained by radfair on the shared split", "bug fixed (REFERENCE bug 1: models tested on different sets)"),
        Known("arms.img.weights", "ImageNet-initialised DenseNet-121 (CheXclusion)", "random initialisation",
              "unavailable offline: no local state-dict file named in arms.img.weights", _unweighted("arms.img.weights")),
        Known("seed training", "five runs with different seeds (one after another)",
              "an embeddings arm's seeds trained together as one batched ensemble: per seed the same initialisation, data "
              "order, gradients, Adam state and early stopping as its own run; dropout masks differ",
              "radfair design: speed (issue 19 item 5); `ensemble: false` in the arm trains one run per seed",
              lambda c: any(a.get("ensemble") is not False and a.get("model") in ("mlp", "linear") for a in (c.get("arms") or {}).values())),
        Known("insurance on ALL", "insurance analysed for MIMIC only", "insurance also analysed for ALL (MIMIC rows only)",
              "the config analyses every attribute on every dataset with data (attributes_by_dataset.all omits it in the paper config)",
              lambda c: "all" in (c.get("datasets") or []) and "insurance" in ((c.get("attributes_by_dataset") or {}).get("all") or c.get("attributes") or [])),
    ],
    "reconstruction": [
        Known("LPIPS (Tables 7-8)", "LPIPS reported", "not computed", "unavailable offline: its backbone weights cannot be obtained"),
        Known("xray.degradation.mode", "the paper's pipeline (reference code: V profile along the angle axis)",
              "physical low dose (bow-tie per detector, Poisson, FBP)", "bug fixed (REFERENCE §3); PSNR not comparable with Tables 7-8",
              lambda c: resolve(c, "xray.degradation.mode") == "physical"),
        Known("mri.degradation.mask", "reference code's uniform half-rays ('R = 8' samples 10.7%)", "golden-angle spokes (achieved fraction ≈ 1/R)",
              "bug fixed (REFERENCE bug 12)", lambda c: resolve(c, "mri.degradation.mask") == "golden_angle"),
        Known("xray.classifier.weights", "ImageNet-initialised DenseNet", "random initialisation",
              "unavailable offline: no local state-dict file named in xray.classifier.weights", _unweighted("xray.classifier.weights")),
        Known("mri.classifier.weights", "ImageNet-initialised ResNet-50", "random initialisation",
              "unavailable offline: no local state-dict file named in mri.classifier.weights", _unweighted("mri.classifier.weights")),
        Known("mri.segmenter initialisation", "ImageNet-initialised U-Net (encoder not named)", "random initialisation",
              "not implemented: the paper does not name the U-Net's encoder and radfair's U-Net has no ImageNet layout; "
              "mri.segmenter.weights starts it from a local state dict of its own layout", _unweighted("mri.segmenter.weights")),
        Known("eodd mitigation loss", "λ·EMA(BCE + EODD²)", "task BCE + λ·EODD² without EMA normalisation",
              "bug fixed (REFERENCE bug 11: normalising by the EMA cancels λ)", lambda c: c.get("mitigation") is not None),
    ],
}


def deviations(study: str, config: dict) -> list[dict]:
    """Every difference between ``config`` (a JSON dump) and the paper: table settings that differ (why: the config's
    ``purpose`` if it states one, else a user override) and the applicable ``KNOWN`` differences."""
    purpose = config.get("purpose") or "user override (the config differs from the paper)"
    out = [{"setting": row["setting"], "paper": row["paper"], "radfair": row["radfair"], "why": purpose, "source": row["source"]}
           for row in resolved_settings(study, config) if row["matches"] is False]
    out += [{"setting": k.setting, "paper": k.paper, "radfair": k.radfair, "why": k.why, "source": "known"}
            for k in KNOWN[study] if k.applies(config)]
    return out


__all__ = ["KNOWN", "PAPER_SETTINGS", "PaperSetting", "deviations", "resolve", "resolved_settings"]

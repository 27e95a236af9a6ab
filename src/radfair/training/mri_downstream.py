"""The UCSF-PDGM downstream models of Study 2 (a slice classifier and a tumour segmenter): settings and run specs.

Both train at the slice level on clean volumes and are then frozen (reconstruction paper §3.3 and appendix
"Diagnostic Hyperparameters"). Each run kind is declared next to its code: :mod:`radfair.training.slice_classifier`
(``train-slice-classifier``) and :mod:`radfair.training.segmenter` (``train-segmenter``); their shared data
handling is :mod:`radfair.training.mri_common`, frozen scoring of any volume table :mod:`radfair.training.frozen_mri`.
This module builds their specs from settings (:func:`run_spec`) and re-exports the public names.
"""

from __future__ import annotations

from pathlib import Path

from ..config import parse_config
from ..errors import RadfairInputError
from .frozen_mri import KINDS, load_frozen, score_volumes
from .mri_common import MRI_LABELS, check_sizes, read_volume_cohort
from .segmenter import (
    TRAIN_SEGMENTER,
    SegmenterRunConfig,
    SegmenterStep,
    dice_from_counts,
    segmentation_table,
    soft_dice_loss,
)
from .slice_classifier import SliceClassifierRunConfig, aggregate_patients


def resolve_config(kind: str, **settings) -> SliceClassifierRunConfig | SegmenterRunConfig:
    """Validate settings for ``kind`` (``train-slice-classifier`` or ``train-segmenter``) and make paths absolute.

    Raises ``RadfairInputError`` for an unknown kind, unknown or invalid settings, non-positive sizes, or a slice
    size the U-Net's levels cannot halve."""
    if kind not in KINDS:
        raise RadfairInputError(f"run kind {kind!r}; expected one of {sorted(KINDS)}")
    config = parse_config(KINDS[kind].settings, settings, f"{kind} settings")
    check_sizes(config)
    if kind == TRAIN_SEGMENTER.name and config.slices.size % 2 ** len(config.widths):
        raise RadfairInputError(f"slices.size: {config.slices.size} is not divisible by 2**{len(config.widths)} (the U-Net's levels)")
    updates = {"cohort": str(Path(config.cohort).resolve())}
    if getattr(config, "weights", None):
        updates["weights"] = str(Path(config.weights).resolve())
    return config.model_copy(update=updates)


def run_spec(kind: str, device: str = "cpu", cpus: int = 0, label: str = "", **settings):
    """A :class:`radfair.execution.RunSpec` for a slice classifier or a segmenter (the cohort is a checksummed input)."""
    config = resolve_config(kind, **settings)
    return KINDS[kind].spec(config, {"cohort": config.cohort}, cpus=cpus, device=device, label=label or f"{kind}-seed{config.seed}")


__all__ = ["KINDS", "MRI_LABELS", "SegmenterRunConfig", "SegmenterStep", "SliceClassifierRunConfig", "aggregate_patients",
           "dice_from_counts", "load_frozen", "read_volume_cohort", "resolve_config", "run_spec", "score_volumes",
           "segmentation_table", "soft_dice_loss"]

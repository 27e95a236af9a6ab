"""The frozen downstream model of a mitigation run (reconstruction paper §3.5: "the classification network is frozen").

``mitigation.task`` names the kind: ``classification`` loads ``classifier_run`` (an image ``train-classifier`` run for
X-ray pairs, a ``train-slice-classifier`` run for NIfTI volumes); ``segmentation`` loads ``segmenter_run`` (a
``train-segmenter`` run; volumes only). Each is fed the reconstruction as it was trained: resized to its input size,
scaled as each classifier was trained (its ``pixel_scaling``, :mod:`radfair.training.inputs`), raw [0, 1] for the segmenter.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import RadfairInputError


@dataclass
class Downstream:
    """A loaded frozen model: ``labels`` its outputs (empty for the segmenter) and how it reads images."""

    model: torch.nn.Module
    labels: list[str]
    image_size: int
    scaling: str | None  # the classifier's pixel scaling (training.inputs.PIXEL_SCALINGS); None: raw [0, 1]


def load_downstream(config, device: torch.device) -> Downstream:
    """The downstream model named by ``config`` (a :class:`~radfair.mitigation.MitigatedReconstructorRunConfig`).

    Raises :class:`RadfairInputError` naming the field when the run needed for ``mitigation.task`` is missing or of
    the wrong kind for the pairs (images or volumes).
    """
    from ..execution.store import require_record
    from ..training.classify import load_classifier
    from ..training.frozen_mri import load_frozen
    from ..training.segmenter import TRAIN_SEGMENTER
    from ..training.slice_classifier import TRAIN_SLICE_CLASSIFIER

    task, volumes = config.mitigation.task, config.volumes is not None
    if task == "segmentation":
        if config.segmenter_run is None:
            raise RadfairInputError("segmenter_run: missing; mitigation.task 'segmentation' needs a finished train-segmenter run")
        if not volumes:
            raise RadfairInputError("mitigation.task: 'segmentation' needs NIfTI volume pairs (`volumes`); expected 'classification' "
                                    "for image pairs")
        require_record(config.segmenter_run, {TRAIN_SEGMENTER.name})
        _, seg_config, model, _ = load_frozen(config.segmenter_run, str(device))
        return Downstream(model, [], seg_config.slices.size, scaling=None)
    if config.classifier_run is None:
        raise RadfairInputError("classifier_run: missing; mitigation.task 'classification' needs a finished classifier run")
    if volumes:
        require_record(config.classifier_run, {TRAIN_SLICE_CLASSIFIER.name})
        _, clf_config, model, _ = load_frozen(config.classifier_run, str(device))
        return Downstream(model, list(clf_config.labels), clf_config.slices.size, scaling="standard")
    model, clf_config = load_classifier(config.classifier_run, device)
    if clf_config.input != "images":
        raise RadfairInputError(f"{config.classifier_run}: a classifier on {clf_config.input}; expected one trained on images")
    return Downstream(model, list(clf_config.labels), clf_config.image_size, scaling=clf_config.pixel_scaling)


__all__ = ["Downstream", "load_downstream"]

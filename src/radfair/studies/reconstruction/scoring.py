"""Run kinds that reconstruct the test images with a finished reconstructor and score them with frozen downstream
models (Study 2), without keeping the reconstructions.

* ``predict-classifier``: a frozen ``train-classifier`` run scores a reconstructor's test images (X-ray);
* ``score-volumes``: frozen ``train-slice-classifier`` and ``train-segmenter`` runs score a reconstructor's test
  volumes (UCSF-PDGM), each with its run's own slice preprocessing and inference slices (no mask chooses them).

Each run reconstructs into its own ``scratch/`` folder (the same pairs, batches and sampling seeds as the training
run's own reconstruction, :func:`radfair.training.reconstruct_run.reconstruct_finished`), scores the images without
caching them, writes ``reconstructed.parquet`` (PSNR/SSIM of every image against its clean image, the degraded
input's as the baseline) and removes the scratch images except a few examples (``keep`` and the first test image,
under ``examples/``, for the figures). A study's disk then holds one reconstruction set per running job instead of
every reconstructor's: 104 GB less on the paper config.

Both are small next to training (one reconstruction and one forward pass over the test split): half a GPU each on CUDA.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pandas as pd

from ...config import StrictModel
from ...execution.kinds import declare
from ...execution.store import RunStore
from ...io import read_table, write_table


class PredictSettings(StrictModel):
    """``classifier_run``: the frozen classifier's run folder; ``cohort``: its cohort (paths replaced by the
    reconstructions); ``reconstructor_run``: a finished reconstructor run; ``keep``: image ids whose reconstructions
    are kept (figures)."""

    classifier_run: str
    cohort: str
    reconstructor_run: str
    keep: tuple[str, ...] = ()


class ScoreVolumesSettings(StrictModel):
    """``model_runs``: task name -> a frozen MRI model's run folder; ``reconstructor_run``: a finished (volume)
    reconstructor run; ``keep``: image ids whose reconstructed volumes are kept (figures)."""

    model_runs: dict[str, str]
    reconstructor_run: str
    keep: tuple[str, ...] = ()


def _reconstruct_into_scratch(reconstructor_run: str, ctx) -> tuple[pd.DataFrame, Path]:
    """The test reconstructions of ``reconstructor_run`` in ``ctx.run_dir/scratch`` (a crashed attempt's are removed
    first) and their table."""
    from ...training.reconstruct_run import SCORED_SPLITS, reconstruct_finished

    scratch = ctx.run_dir / "scratch"
    shutil.rmtree(scratch, ignore_errors=True)
    table = reconstruct_finished(reconstructor_run, SCORED_SPLITS, ctx.run_dir, ctx.device, folder=scratch, progress=ctx.progress)
    return table, scratch


def keep_examples(table: pd.DataFrame, keep, run_dir: Path, scratch: Path) -> pd.DataFrame:
    """Move the reconstructions of ``keep`` and of the first test image (by id) to ``run_dir/examples/``, write
    ``run_dir/reconstructed.parquet`` (``path`` set for the kept images only, empty for the others) and remove
    ``scratch``; returns the table written."""
    kept = {str(i) for i in keep}
    if len(table):
        kept.add(str(sorted(table["image_id"].astype(str))[0]))
    folder = run_dir / "examples"
    folder.mkdir(exist_ok=True)
    paths = []
    for image_id, path in zip(table["image_id"].astype(str), table["path"], strict=True):
        if image_id in kept:
            target = folder / Path(path).name
            os.replace(path, target)
            paths.append(str(target))
        else:
            paths.append(None)
    written = table.assign(path=pd.Series(paths, index=table.index, dtype=object))
    write_table(written, run_dir / "reconstructed.parquet")
    shutil.rmtree(scratch, ignore_errors=True)
    return written


def run_predict(config: dict, ctx) -> dict[str, str]:
    """``predict-classifier``: the classifier cohort with each test image replaced by its reconstruction, scored."""
    from ...training.classify import predict_cohort

    settings = PredictSettings.model_validate(config)
    table, scratch = _reconstruct_into_scratch(settings.reconstructor_run, ctx)
    base = read_table(settings.cohort)
    cohort = base.drop(columns="path").merge(table[["image_id", "path"]], on="image_id", how="inner")
    write_table(cohort, scratch / "cohort.parquet")
    # a reconstruction is scored once: decoded for this run only, never added to the shared image cache
    predict_cohort(settings.classifier_run, scratch / "cohort.parquet", ctx.run_dir / PREDICT_CLASSIFIER.outputs["scored"],
                   device=ctx.device, progress=ctx.progress, persist=False)
    keep_examples(table, settings.keep, ctx.run_dir, scratch)
    return dict(PREDICT_CLASSIFIER.outputs)


def _volume_outputs(config: dict) -> dict[str, str]:
    """``<task>_scores`` per frozen model of ``model_runs`` (a scored or segmentation table), and ``reconstructed``."""
    tasks = config.get("model_runs") or {}
    return {**{f"{task}_scores": f"{task}_scores.parquet" for task in tasks}, "reconstructed": "reconstructed.parquet"}


def run_score_volumes(config: dict, ctx) -> dict[str, str]:
    """``score-volumes``: reconstructed test volumes scored by frozen MRI runs (a scored or segmentation table each)."""
    from ...training.frozen_mri import score_volumes

    settings = ScoreVolumesSettings.model_validate(config)
    table, scratch = _reconstruct_into_scratch(settings.reconstructor_run, ctx)
    outputs = _volume_outputs(config)
    for task, model_run in settings.model_runs.items():
        # the slices of scratch volumes are built in scratch (removed below), never in the shared slice cache
        score_volumes(model_run, scratch / "reconstructed.parquet", ctx.run_dir / outputs[f"{task}_scores"], column="path",
                      device=ctx.device, progress=ctx.progress, persist=False)
    keep_examples(table, settings.keep, ctx.run_dir, scratch)
    return outputs


PREDICT_CLASSIFIER = declare("predict-classifier", settings=PredictSettings, function=run_predict, gpu=0.5,
                             outputs={"scored": "scored.parquet", "reconstructed": "reconstructed.parquet"})
SCORE_VOLUMES = declare("score-volumes", settings=ScoreVolumesSettings, function=run_score_volumes, gpu=0.5,
                        outputs=_volume_outputs)


def predict_spec(store: RunStore, classifier, cohort: str, recon, device: str, label: str, keep=()):
    """The ``predict-classifier`` spec of reconstructor run ``recon`` (a spec) under the frozen ``classifier`` (a spec)."""
    return PREDICT_CLASSIFIER.spec({"classifier_run": str(store.run_dir(classifier)), "cohort": cohort,
                                    "reconstructor_run": str(store.run_dir(recon)), "keep": [str(k) for k in keep]},
                                   {"classifier": str(store.output(classifier, "best_checkpoint")),
                                    "reconstructor": str(store.output(recon, "best_checkpoint"))},
                                   device=device, label=label)


def score_volumes_spec(store: RunStore, models: dict, recon, device: str, label: str, keep=()):
    """The ``score-volumes`` spec of reconstructor run ``recon`` under the frozen MRI ``models`` (task -> spec)."""
    return SCORE_VOLUMES.spec({"model_runs": {task: str(store.run_dir(model)) for task, model in models.items()},
                               "reconstructor_run": str(store.run_dir(recon)), "keep": [str(k) for k in keep]},
                              {**{task: str(store.output(model, "best_checkpoint")) for task, model in models.items()},
                               "reconstructor": str(store.output(recon, "best_checkpoint"))},
                              device=device, label=label)


__all__ = ["PREDICT_CLASSIFIER", "PredictSettings", "SCORE_VOLUMES", "ScoreVolumesSettings", "keep_examples", "predict_spec",
           "run_predict", "run_score_volumes", "score_volumes_spec"]

"""Run kinds that score reconstructions with frozen downstream models (Study 2).

* ``predict-classifier``: a frozen ``train-classifier`` run scores a reconstruction run's images (X-ray);
* ``score-volumes``: a frozen ``train-slice-classifier`` or ``train-segmenter`` run scores a reconstruction
  run's volumes (UCSF-PDGM), with the run's own slice preprocessing and inference slices (no mask chooses them).

Both are small next to training (one forward pass over the scored splits): half a GPU each on CUDA.
"""

from __future__ import annotations

from ...config import StrictModel
from ...execution.kinds import declare
from ...execution.store import RunStore
from ...io import read_table, write_table


class PredictSettings(StrictModel):
    """``classifier_run``: the frozen classifier's run folder; ``cohort``: its cohort (paths replaced);
    ``reconstructed``: the reconstruction run's ``reconstructed`` table."""

    classifier_run: str
    cohort: str
    reconstructed: str


class ScoreVolumesSettings(StrictModel):
    """``model_run``: the frozen MRI model's run folder; ``reconstructed``: the reconstruction run's volume table."""

    model_run: str
    reconstructed: str


def run_predict(config: dict, ctx) -> dict[str, str]:
    """``predict-classifier``: the classifier cohort with each image replaced by its reconstruction, scored."""
    from ...training.classify import predict_cohort

    base = read_table(config["cohort"])
    recon = read_table(config["reconstructed"])[["image_id", "path"]]
    table = base.drop(columns="path").merge(recon, on="image_id", how="inner")
    cohort = ctx.run_dir / PREDICT_CLASSIFIER.outputs["cohort"]
    write_table(table, cohort)
    # a reconstruction is scored once: decoded for this run only, never added to the shared image cache
    predict_cohort(config["classifier_run"], cohort, ctx.run_dir / PREDICT_CLASSIFIER.outputs["scored"], device=ctx.device,
                   progress=ctx.progress, persist=False)
    return dict(PREDICT_CLASSIFIER.outputs)


def run_score_volumes(config: dict, ctx) -> dict[str, str]:
    """``score-volumes``: reconstructed volumes scored by a frozen MRI run (scored or segmentation table)."""
    from ...training.frozen_mri import score_volumes

    score_volumes(config["model_run"], config["reconstructed"], ctx.run_dir / SCORE_VOLUMES.outputs["scores"], column="path",
                  device=ctx.device, progress=ctx.progress)
    return dict(SCORE_VOLUMES.outputs)


PREDICT_CLASSIFIER = declare("predict-classifier", settings=PredictSettings, function=run_predict, gpu=0.5,
                             outputs={"scored": "scored.parquet", "cohort": "cohort.parquet"})
SCORE_VOLUMES = declare("score-volumes", settings=ScoreVolumesSettings, function=run_score_volumes, gpu=0.5,
                        outputs={"scores": "scores.parquet"})


def predict_spec(store: RunStore, classifier, cohort: str, recon, device: str, label: str):
    """The ``predict-classifier`` spec of reconstruction run ``recon`` (a spec) under the frozen ``classifier`` (a spec)."""
    reconstructed = str(store.output(recon, "reconstructed"))
    return PREDICT_CLASSIFIER.spec({"classifier_run": str(store.run_dir(classifier)), "cohort": cohort, "reconstructed": reconstructed},
                                   {"classifier": str(store.output(classifier, "best_checkpoint")), "reconstructed": reconstructed},
                                   device=device, label=label)


def score_volumes_spec(store: RunStore, model, recon, device: str, label: str):
    """The ``score-volumes`` spec of reconstruction run ``recon`` under the frozen MRI ``model`` (both specs)."""
    reconstructed = str(store.output(recon, "reconstructed"))
    return SCORE_VOLUMES.spec({"model_run": str(store.run_dir(model)), "reconstructed": reconstructed},
                              {"model": str(store.output(model, "best_checkpoint")), "reconstructed": reconstructed},
                              device=device, label=label)


__all__ = ["PREDICT_CLASSIFIER", "PredictSettings", "SCORE_VOLUMES", "ScoreVolumesSettings", "predict_spec", "run_predict",
           "run_score_volumes", "score_volumes_spec"]

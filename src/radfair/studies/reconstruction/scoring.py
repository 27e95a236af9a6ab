"""Run kinds that score reconstructions with frozen downstream models (Study 2).

* ``predict-classifier``: a frozen ``train-classifier`` run scores a reconstruction run's images (X-ray);
* ``score-volumes``: a frozen ``train-slice-classifier`` or ``train-segmenter`` run scores a reconstruction
  run's volumes (UCSF-PDGM), with the run's own slice preprocessing and the true masks choosing the slices.
"""

from __future__ import annotations

from ...io import read_table, write_table


def run_predict(config: dict, ctx) -> dict[str, str]:
    """``predict-classifier``: the classifier cohort with each image replaced by its reconstruction, scored."""
    from ...training.classify import predict_cohort

    base = read_table(config["cohort"])
    recon = read_table(config["reconstructed"])[["image_id", "path"]]
    table = base.drop(columns="path").merge(recon, on="image_id", how="inner")
    cohort = ctx.run_dir / "cohort.parquet"
    write_table(table, cohort)
    predict_cohort(config["classifier_run"], cohort, ctx.run_dir / "scored.parquet", device=ctx.device, progress=ctx.progress)
    return {"scored": "scored.parquet"}


def run_score_volumes(config: dict, ctx) -> dict[str, str]:
    """``score-volumes``: reconstructed volumes scored by a frozen MRI run (scored or segmentation table)."""
    from ...training.mri_downstream import score_volumes

    score_volumes(config["model_run"], config["reconstructed"], ctx.run_dir / "scores.parquet", column="path",
                  device=ctx.device, progress=ctx.progress)
    return {"scores": "scores.parquet"}


__all__ = ["run_predict", "run_score_volumes"]

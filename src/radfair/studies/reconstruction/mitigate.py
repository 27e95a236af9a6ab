"""Study 2 mitigation (CheXpert; reconstruction paper §3.5): fine-tune each standard reconstructor for downstream
fairness with the frozen classifier, sweep λ on validation, keep the λ the stated rule picks.

For every (reconstructor, level) in scope, ``train-mitigated-reconstructor`` runs (:mod:`radfair.mitigation`) start
from the standard run's best weights: one ``standard`` fine-tune (reconstruction loss only, the same budget: the
reference for λ selection), one ``reweighting`` run (no λ) and one run per λ of ``eodd`` and ``adversarial``.
:func:`radfair.mitigation.choose_weight` picks λ (largest validation EODD reduction within the PSNR/AUROC tolerances;
ties to the smaller λ; validation EODD = mean over attributes and findings of the worst case over group pairs).
The fairness-aware term is λ·(task BCE + fairness term), as in the paper (without its running-mean normalisation,
which cancels λ): the standard fine-tune and reweighting use the reconstruction loss alone. When no λ qualifies, the run with the lowest validation EODD is carried forward and
flagged ``chosen_by = fallback`` in ``mitigation_sweep.csv``, so tables never silently miss a strategy.
The chosen run joins the grid under the key ``(reconstructor, level, strategy)``: scored on test, analysed and
adjusted with everything else.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ...execution import RunSpec
from .parts import STANDARD, Key

FINETUNE = "standard-finetune"


def mitigation_levels(part, study) -> list[str]:
    levels = part.levels()
    return study.levels or [levels[(len(levels) - 1) // 2]]


def sweep_specs(config, part, recon: dict[Key, RunSpec], store: Path) -> dict[tuple, RunSpec]:
    """Run specs keyed by (reconstructor, level, strategy, λ); strategy ``standard-finetune`` is the reference."""
    from ...mitigation import VALIDATION_KEY, MitigatedReconstructorRunConfig, MitigationConfig
    from ...training.loop import LoopConfig

    m = config.mitigation
    attributes = [a for a in (m.attributes or config.analysis.attributes) if a in part.split.columns]
    clf_dir = store / part.classifier.run_id
    loop = LoopConfig(epochs=m.epochs, patience=m.patience, monitor=VALIDATION_KEY, mode="min")
    runs = [("standard", 0.0)] + [(s, 0.0) for s in m.strategies if s == "reweighting"]
    runs += [(s, w) for s in m.strategies if s != "reweighting" for w in m.weights]
    specs = {}
    for kind in m.reconstructors or list(part.study.reconstructors):
        for level in mitigation_levels(part, m):
            base = recon[(kind, level, STANDARD)]
            base_dir = store / base.run_id
            settings = part.run_config(kind, level).model_dump(mode="json")
            settings.update(batch_size=m.batch_size, loop=loop.model_dump(mode="json"))
            for strategy, weight in runs:
                # the paper's fairness-aware term is λ·(task BCE + fairness term): the task loss scales with λ too
                # (a fixed task weight would move the images for the classifier's sake at every λ); the standard
                # fine-tune and reweighting train on the reconstruction loss alone (reweighting acts by sampling)
                task_weight = weight if strategy in ("eodd", "adversarial") else 0.0
                chosen_settings = {"task_weight": task_weight, **m.settings}
                mitigation = MitigationConfig(strategy=strategy, weight=weight, attributes=attributes, **chosen_settings)
                run_config = MitigatedReconstructorRunConfig(**settings, base_run=str(base_dir), classifier_run=str(clf_dir),
                                                             labels=part.study.labels, mitigation=mitigation)
                name = FINETUNE if strategy == "standard" else strategy
                specs[(kind, level, name, weight)] = RunSpec(
                    "train-mitigated-reconstructor", run_config.model_dump(mode="json"),
                    {"degraded": run_config.degraded, "base": str(base_dir / "checkpoints" / "best.pt"),
                     "classifier": str(clf_dir / "checkpoints" / "best.pt")},
                    device=config.device, label=f"chexpert-{kind}-{level}-{name}-{weight:g}")
    return specs


def choose_runs(specs: dict[tuple, RunSpec], store: Path, study) -> tuple[dict[Key, RunSpec], pd.DataFrame]:
    """The chosen run per (reconstructor, level, strategy) and the whole sweep with the choice and its reason."""
    from ...mitigation import choose_weight

    rows = []
    for (kind, level, strategy, weight), spec in specs.items():
        summary = json.loads((store / spec.run_id / "validation.json").read_text())
        rows.append({"reconstructor": kind, "level": level, "strategy": strategy, "weight": weight, "run_id": spec.run_id,
                     **{k: summary.get(k) for k in ("val_psnr", "val_auroc", "val_eodd", "val_eodd_clean", "best_epoch")}})
    sweep = pd.DataFrame(rows).astype({"val_psnr": float, "val_auroc": float, "val_eodd": float})
    sweep["chosen"], sweep["chosen_by"], sweep["reason"] = False, "", ""
    chosen: dict[Key, RunSpec] = {}
    for (kind, level, strategy), group in sweep.groupby(["reconstructor", "level", "strategy"], sort=False):
        if strategy == FINETUNE:
            continue
        reference = sweep[(sweep["reconstructor"] == kind) & (sweep["level"] == level) & (sweep["strategy"] == FINETUNE)].iloc[0]
        weight, reason = choose_weight(group, reference.to_dict(), max_psnr_drop_db=study.max_psnr_drop_db,
                                       max_auroc_drop=study.max_auroc_drop)
        how = "rule"
        if weight is None:
            weight, how = float(group.sort_values(["val_eodd", "weight"]).iloc[0]["weight"]), "fallback"
            reason = f"no λ met the rule ({reason}); the lowest validation EODD (λ={weight:g}) is carried forward"
        index = group.index[group["weight"] == weight][0]
        sweep.loc[index, ["chosen", "chosen_by", "reason"]] = [True, how, reason]
        chosen[(kind, level, strategy)] = specs[(kind, level, strategy, weight)]
    return chosen, sweep


__all__ = ["FINETUNE", "choose_runs", "mitigation_levels", "sweep_specs"]

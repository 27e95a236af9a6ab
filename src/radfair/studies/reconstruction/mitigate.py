"""Study 2 mitigation (reconstruction paper §3.5): fine-tune each standard reconstructor for downstream fairness with
a frozen downstream model, sweep λ on validation, keep the λ the stated rule picks.

For every part named in ``mitigation.datasets`` (CheXpert: the frozen classifier; UCSF-PDGM: the frozen tumour
segmenter, :meth:`~.xray.XrayPart.mitigation_downstream`, :meth:`~.mri.MriPart.mitigation_downstream`) and every
(reconstructor, level) in scope, ``train-mitigated-reconstructor`` runs (:mod:`radfair.mitigation`) start from the
standard run's best weights: one ``standard`` fine-tune (reconstruction loss only, the same budget: the reference for
λ selection), one ``reweighting`` run (no λ) and one run per λ of ``eodd`` and ``adversarial``.
:func:`radfair.mitigation.choose_weight` picks λ (largest validation fairness-gap reduction within the PSNR and task
tolerances; ties to the smaller λ): CheXpert on mean AUROC and mean worst-case EODD (over attributes and findings),
UCSF-PDGM on mean Dice and mean ΔDice (over attributes). The fairness-aware term is λ·(task loss + fairness term), as
in the paper (without its running-mean normalisation, which cancels λ): the standard fine-tune and reweighting use
the reconstruction loss alone. When no λ qualifies, the run that least exceeds the PSNR / performance tolerances is
carried forward (:func:`radfair.mitigation.fallback_weight`; the lowest gap would reward a wrecked image, whose constant
predictions have no gap) and flagged ``chosen_by = fallback`` in ``mitigation_sweep.csv``, so tables never silently
miss a strategy.
The chosen run's test images are reconstructed by a ``reconstruct`` run (:func:`reconstruct_specs`; the sweep runs
write no images), which joins the grid under the key ``(reconstructor, level, strategy)``: scored on test, analysed
and adjusted with everything else.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ...errors import RadfairInputError
from ...execution import RunSpec, RunStore
from .parts import FINETUNE, STANDARD, Key, headline_attributes

SWEEP_METRICS = ("val_psnr", "val_auroc", "val_eodd", "val_eodd_clean", "val_dice", "val_dice_gap", "val_dice_gap_clean")


def check_scope(study, parts: list) -> None:
    """Every dataset and level the mitigation section names belongs to a part of the study (one-line error if not)."""
    present = {part.dataset for part in parts}
    absent = [d for d in study.datasets if d not in present]
    if absent:
        raise RadfairInputError(f"mitigation.datasets: {absent} are not parts of this study; expected some of {sorted(present)}")
    known = {level for part in parts for level in part.levels()}
    unknown = [level for level in study.levels or [] if level not in known]
    if unknown:
        raise RadfairInputError(f"mitigation.levels: {unknown} are no degradation level of the study; expected some of {sorted(known)}")


def mitigation_levels(part, study) -> list[str]:
    """The part's levels named in ``study.levels``; none named: the middle level."""
    levels = part.levels()
    named = [level for level in study.levels or [] if level in levels]
    return named or [levels[(len(levels) - 1) // 2]]


def sweep_specs(config, part, recon: dict[Key, RunSpec], store: Path) -> dict[tuple, RunSpec]:
    """Run specs keyed by (reconstructor, level, strategy, λ); strategy ``standard-finetune`` is the reference."""
    from ...mitigation import (
        TRAIN_MITIGATED_RECONSTRUCTOR,
        VALIDATION_KEY,
        MitigatedReconstructorRunConfig,
        MitigationConfig,
    )
    from ...training.loop import LoopConfig

    m = config.mitigation
    split = part.split
    chosen = m.attributes or headline_attributes(config.analysis.attributes)  # never race twice (race_merged) in the loss
    attributes = [a for a in chosen if a in split.columns and split[a].notna().any()]
    task, fields, model = part.mitigation_downstream()
    loop = LoopConfig(epochs=m.epochs, patience=m.patience, monitor=VALIDATION_KEY, mode="min")
    runs = [("standard", 0.0)] + [(s, 0.0) for s in m.strategies if s == "reweighting"]
    runs += [(s, w) for s in m.strategies if s != "reweighting" for w in m.weights_by_dataset.get(part.dataset, m.weights)]
    specs = {}
    for kind in [k for k in m.reconstructors or part.study.reconstructors if k in part.study.reconstructors]:
        for level in mitigation_levels(part, m):
            base = recon[(kind, level, STANDARD)]
            base_dir = part.runs.run_dir(base)
            settings = part.run_config(kind, level).model_dump(mode="json")
            settings.update(batch_size=m.batch_size, loop=loop.model_dump(mode="json"))
            for strategy, weight in runs:
                # the paper's fairness-aware term is λ·(task loss + fairness term): the task loss scales with λ too
                # (a fixed task weight would move the images for the downstream model's sake at every λ); the standard
                # fine-tune and reweighting train on the reconstruction loss alone (reweighting acts by sampling)
                task_weight = weight if strategy in ("eodd", "adversarial") else 0.0
                chosen_settings = {"task_weight": task_weight, **m.settings}
                mitigation = MitigationConfig(strategy=strategy, weight=weight, attributes=attributes, task=task, **chosen_settings)
                run_config = MitigatedReconstructorRunConfig(**settings, base_run=str(base_dir), mitigation=mitigation, **fields)
                name = FINETUNE if strategy == "standard" else strategy
                specs[(kind, level, name, weight)] = TRAIN_MITIGATED_RECONSTRUCTOR.spec(
                    run_config, {"degraded": run_config.degraded, "base": str(part.runs.output(base, "best_checkpoint")),
                                 "downstream": str(part.runs.output(model, "best_checkpoint"))},
                    device=config.device, label=f"{part.short}-{kind}-{level}-{name}-{weight:g}")
    return specs


def choose_runs(specs: dict[tuple, RunSpec], store: Path, study, dataset: str) -> tuple[dict[Key, RunSpec], pd.DataFrame]:
    """The chosen run per (reconstructor, level, strategy) and the whole sweep with the choice and its reason."""
    from ...mitigation import choose_weight, fallback_weight

    rows, keys = [], set()
    for (kind, level, strategy, weight), spec in specs.items():
        summary = json.loads(RunStore(store).output(spec, "validation").read_text())
        keys.add((summary.get("performance_key", "val_auroc"), summary.get("fairness_key", "val_eodd")))
        rows.append({"dataset": dataset, "reconstructor": kind, "level": level, "strategy": strategy, "weight": weight,
                     "run_id": spec.run_id, **{k: summary.get(k) for k in SWEEP_METRICS if k in summary},
                     "best_epoch": summary.get("best_epoch")})
    (performance, fairness), = keys  # one downstream model per part
    tolerance = study.max_dice_drop if performance == "val_dice" else study.max_auroc_drop
    sweep = pd.DataFrame(rows)
    sweep[[*SWEEP_METRICS]] = sweep.reindex(columns=list(SWEEP_METRICS)).astype(float)
    sweep["performance_key"], sweep["fairness_key"] = performance, fairness
    sweep["chosen"], sweep["chosen_by"], sweep["reason"] = False, "", ""
    chosen: dict[Key, RunSpec] = {}
    for (kind, level, strategy), group in sweep.groupby(["reconstructor", "level", "strategy"], sort=False):
        if strategy == FINETUNE:  # the same-budget reference: scored too, the primary comparison of every strategy
            chosen[(kind, level, FINETUNE)] = specs[(kind, level, FINETUNE, float(group["weight"].iloc[0]))]
            continue
        reference = sweep[(sweep["reconstructor"] == kind) & (sweep["level"] == level) & (sweep["strategy"] == FINETUNE)].iloc[0]
        weight, reason = choose_weight(group, reference.to_dict(), max_psnr_drop_db=study.max_psnr_drop_db,
                                       max_performance_drop=tolerance, performance=performance, fairness=fairness)
        how = "rule"
        if weight is None:
            weight, chosen_reason = fallback_weight(group, reference.to_dict(), max_psnr_drop_db=study.max_psnr_drop_db,
                                                    max_performance_drop=tolerance, performance=performance, fairness=fairness)
            how, reason = "fallback", f"no λ met the rule ({reason}); {chosen_reason}"
        index = group.index[group["weight"] == weight][0]
        sweep.loc[index, ["chosen", "chosen_by", "reason"]] = [True, how, reason]
        chosen[(kind, level, strategy)] = specs[(kind, level, strategy, weight)]
    reference_kind = getattr(study, "lambda_from", None)
    if reference_kind:  # the paper: λ chosen once, on the U-Net, and used for every reconstructor
        for kind, level, strategy in list(chosen):
            if strategy == FINETUNE or kind == reference_kind or (reference_kind, level, strategy) not in chosen:
                continue
            ref_weight = float(sweep.loc[(sweep["reconstructor"] == reference_kind) & (sweep["level"] == level)
                                         & (sweep["strategy"] == strategy) & sweep["chosen"], "weight"].iloc[0])
            if (kind, level, strategy, ref_weight) not in specs:
                continue
            own = sweep.index[(sweep["reconstructor"] == kind) & (sweep["level"] == level) & (sweep["strategy"] == strategy)]
            sweep.loc[own, ["chosen", "chosen_by", "reason"]] = [False, "", ""]
            target = own[sweep.loc[own, "weight"] == ref_weight][0]
            sweep.loc[target, ["chosen", "chosen_by", "reason"]] = [True, f"from {reference_kind}",
                                                                    f"λ chosen once on the {reference_kind} (the paper's protocol)"]
            chosen[(kind, level, strategy)] = specs[(kind, level, strategy, ref_weight)]
    return chosen, sweep


__all__ = ["FINETUNE", "check_scope", "choose_runs", "mitigation_levels", "sweep_specs"]

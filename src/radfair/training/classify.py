"""Train a classifier on a cohort's embeddings or images and score its val/test rows.

This is the ``train-classifier`` run kind of the run store (``radfair train``, Study 1): read the split
cohort, build the inputs (:mod:`radfair.training.inputs`), train with the shared loop, then score the
val and test rows with the **best** checkpoint into ``scored.parquet`` (the scored-table contract:
ids, ``split``, attributes, ``y_<label>``, ``p_<label>``), ready for ``radfair audit``.

The ``train-classifier-ensemble`` run kind trains several seeds of an embeddings head (MLP or linear probe) together
(:class:`radfair.models.StackedHead`, issue 19 item 5): each seed initialised as its own ``train-classifier`` run
would be (``torch.manual_seed(seed)``, then the head), each with its own data order, gradients, Adam state, early
stopping and best checkpoint; one batched forward/backward and one optimiser step per iteration serve all seeds.
Only dropout's random masks differ from separate runs. It writes the files of a ``train-classifier`` run per seed
under ``seed<k>/`` (outputs ``scored-seed<k>``, ``history-seed<k>``, ``metrics-seed<k>``, ``best_checkpoint-seed<k>``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import torch

from ..config import StrictModel, parse_config
from ..errors import BAD_OPTION, BAD_VALUES, MISSING_COLUMNS, RadfairInputError, preview
from ..execution.kinds import declare
from ..execution.store import require_record, run_output
from ..io import read_table, write_json, write_table
from ..models import CLASSIFIER_INPUTS, EMBEDDING_DIM, StackedHead, build_classifier, load_weights
from .checkpoint import check_device, load_checkpoint
from .inputs import EmbeddingBatches, ImageBatches, MemberBatches, RowView, embedding_matrix, image_array
from .loop import LoopConfig, fit
from .steps import ClassifierStep, EnsembleClassifierStep, OptimConfig, make_optimizer

#: Columns of the cohort carried into the scored table (when present).
CARRIED = ("image_id", "patient_id", "study_id", "dataset", "path", "view", "sex", "age", "age_group", "race", "insurance", "site")


class ClassifierSettings(StrictModel):
    """What determines a trained classifier apart from its seed (hashed into the run id)."""

    cohort: str
    input: Literal["embeddings", "images"]
    model: str
    root: str | None = None
    labels: list[str]
    image_size: int = 224
    batch_size: int = 48
    eval_batch_size: int = 512
    hidden: list[int] = [768, 256]
    dropout: float = 0.3
    weights: str | None = None
    pixel_scaling: Literal["standard", "xrv"] = "standard"  # image input only (training.inputs.PIXEL_SCALINGS)
    missing_embeddings: Literal["error", "drop"] = "error"
    optim: OptimConfig = OptimConfig()
    loop: LoopConfig = LoopConfig()


class ClassifierRunConfig(ClassifierSettings):
    """Everything that determines a trained classifier (hashed into the run id)."""

    seed: int = 0


class EnsembleRunConfig(ClassifierSettings):
    """Everything that determines the seeds of one embeddings classifier trained together (hashed into the run id)."""

    seeds: list[int]


def member_name(seed: int) -> str:
    """An ensemble member's name (its outputs' suffix and folder): ``seed<k>``."""
    return f"seed{seed}"


def resolve_config(config_type: type[ClassifierSettings] = ClassifierRunConfig, **settings) -> ClassifierSettings:
    """Validate settings (a :class:`ClassifierRunConfig`, or with ``config_type`` an :class:`EnsembleRunConfig`), check
    that model and input agree, and make paths absolute. Bad settings raise ``RadfairInputError``."""
    config = parse_config(config_type, settings, "train settings")
    if isinstance(config, EnsembleRunConfig):
        if config.input != "embeddings":
            raise RadfairInputError(BAD_OPTION.format(option="ensemble", value=config.model,
                                                      expected="a model on embeddings (mlp, linear); image models train one seed per run"))
        if not config.seeds or len(set(config.seeds)) != len(config.seeds):
            raise RadfairInputError(BAD_OPTION.format(option="seeds", value=config.seeds, expected="one or more distinct seeds"))
    if config.model not in CLASSIFIER_INPUTS:
        raise RadfairInputError(BAD_OPTION.format(option="--model", value=config.model, expected=list(CLASSIFIER_INPUTS)))
    if CLASSIFIER_INPUTS[config.model] != config.input:
        raise RadfairInputError(BAD_OPTION.format(option="--input", value=config.input,
                                                  expected=f"{CLASSIFIER_INPUTS[config.model]} for --model {config.model}"))
    if config.input == "embeddings" and not config.root:
        raise RadfairInputError(BAD_OPTION.format(option="--root", value=None, expected="the folder holding the embedding store"))
    if config.image_size < 32:
        raise RadfairInputError(BAD_OPTION.format(option="--image-size", value=config.image_size, expected="at least 32 pixels"))
    for option, value in (("--batch-size", config.batch_size), ("--epochs", config.loop.epochs)):
        if value < 1:
            raise RadfairInputError(BAD_OPTION.format(option=option, value=value, expected="a positive integer"))
    updates = {"cohort": str(Path(config.cohort).resolve())}
    if config.root:
        updates["root"] = str(Path(config.root).resolve())
    if config.weights:
        updates["weights"] = str(Path(config.weights).resolve())
    return config.model_copy(update=updates)


def read_split_cohort(path: str | Path, labels: list[str] | None) -> tuple[pd.DataFrame, list[str]]:
    """The cohort with its ``split`` column checked, and the labels to train (default: every ``y_`` column)."""
    cohort = read_table(path, "split cohort table")
    needed = ["image_id", "patient_id", "split"]
    missing = [c for c in needed if c not in cohort.columns]
    if missing:
        hint = " (run `radfair split` first)" if "split" in missing else ""
        raise RadfairInputError(MISSING_COLUMNS.format(path=path, columns=missing, expected=f"{needed} and y_<label> columns{hint}"))
    bad = cohort["split"][~cohort["split"].isin(("train", "val", "test"))]
    if len(bad):
        raise RadfairInputError(BAD_VALUES.format(path=path, column="split", values=preview(bad), expected="expected train, val or test"))
    available = [c[2:] for c in cohort.columns if c.startswith("y_")]
    chosen = available if not labels else [label.removeprefix("y_") for label in labels]
    unknown = [label for label in chosen if label not in available]
    if unknown or not chosen:
        raise RadfairInputError(MISSING_COLUMNS.format(path=path, columns=[f"y_{u}" for u in unknown] or ["y_<label>"],
                                                       expected=f"label columns; available: {available}"))
    for split in ("train", "val"):
        if not (cohort["split"] == split).any():
            raise RadfairInputError(f"{path}: no {split} rows in column 'split'; expected a train/val/test split")
    return cohort, chosen


class Inputs:
    """The rows a run uses and a way to batch any subset of them."""

    def __init__(self, config: ClassifierRunConfig, cohort: pd.DataFrame, cohort_path: str, *, progress: bool = True,
                 log=print, persist: bool = True):
        self.config = config
        self.cohort = cohort.reset_index(drop=True)
        if config.input == "embeddings":
            matrix, found = embedding_matrix(cohort, cohort_path, config.root)
            if not found.all():
                missing = self.cohort["image_id"][~found]
                message = (f"{config.root}: no embedding for {len(missing)} of {len(found)} cohort rows "
                           f"(e.g. {preview(missing, 3)})")
                if config.missing_embeddings == "error":
                    raise RadfairInputError(message + "; expected one per row, or drop those rows with --missing-embeddings drop")
                log(message + "; dropped (--missing-embeddings drop)")
            self.rows = np.flatnonzero(found)
            self.x = torch.from_numpy(np.ascontiguousarray(matrix[self.rows]))
            self.in_features = int(matrix.shape[1])
        else:
            self.rows = np.arange(len(self.cohort))
            self.x = image_array(self.cohort, cohort_path, config.image_size, progress=progress, persist=persist)
            self.in_features = EMBEDDING_DIM
        self.used = self.cohort.iloc[self.rows].reset_index(drop=True)

    def batches(self, mask: np.ndarray, labels: list[str], *, train: bool, device,
                seeds: list[int] | None = None) -> EmbeddingBatches | ImageBatches | MemberBatches:
        """Batches of the rows in ``mask``: shuffled per (seed, epoch) when ``train``; with ``seeds`` (embeddings, training)
        one batch per seed side by side (:class:`MemberBatches`)."""
        rows = np.flatnonzero(mask)
        y = torch.from_numpy(self.used[[f"y_{k}" for k in labels]].to_numpy(np.float32)[rows])
        size = self.config.batch_size if train else self.config.eval_batch_size
        device = torch.device(device)
        if seeds is not None:
            return MemberBatches(self.x[torch.from_numpy(rows)], y, size, seeds=seeds, device=device)
        seed = self.config.seed if train else 0  # evaluation order is the rows' order
        if self.config.input == "embeddings":
            return EmbeddingBatches(self.x[torch.from_numpy(rows)], y, size, shuffle=train, seed=seed, device=device)
        view = RowView(self.x, self.rows[rows])
        return ImageBatches(view, y, size, shuffle=train, seed=seed, device=device, channels_last=device.type == "cuda",
                            scaling=self.config.pixel_scaling)


def _model(config: ClassifierSettings, n_labels: int, log, in_features: int = EMBEDDING_DIM) -> torch.nn.Module:
    model = build_classifier(config.model, n_labels, in_features=in_features, hidden=config.hidden, dropout=config.dropout)
    if config.weights:
        counts = load_weights(model, config.weights)
        log(f"weights {config.weights}: {counts['matched']} of {counts['model_tensors']} tensors loaded")
    return model


@torch.no_grad()
def predict_scores(model: torch.nn.Module, batches, device) -> np.ndarray:
    """Sigmoid scores for every row of ``batches`` (in order), as float64.

    Always in float32, on every device: scores feed thresholds, ties and the clean-vs-reconstructed differences the
    studies measure, and bf16 (8 mantissa bits) would quantise them; autocast is for training steps only.
    ``device`` is accepted for symmetry with training and not used to change precision.
    """
    model.eval()
    out = []
    with torch.autocast(torch.device(device).type, enabled=False):
        for batch in batches.epoch(0):
            out.append(torch.sigmoid(model(batch["x"].float()).float()).cpu())
    return torch.cat(out).double().numpy() if out else np.zeros((0, 0))


def scored_table(rows: pd.DataFrame, labels: list[str], scores: np.ndarray) -> pd.DataFrame:
    """The scored-table contract: carried columns, split, y_<label>, p_<label>."""
    keep = [c for c in CARRIED if c in rows.columns] + (["split"] if "split" in rows.columns else [])
    table = rows[keep + [f"y_{k}" for k in labels]].reset_index(drop=True).copy()
    for j, label in enumerate(labels):
        table[f"p_{label}"] = scores[:, j]
    return table


def run_training(config_dict: dict, ctx) -> dict[str, str]:
    """The ``train-classifier`` run: train (or resume), then score val and test with the best checkpoint."""
    config = ClassifierRunConfig.model_validate(config_dict)
    cohort, labels = read_split_cohort(config.cohort, config.labels)
    device = torch.device(ctx.device)
    inputs = Inputs(config, cohort, config.cohort, progress=ctx.progress, log=ctx.log)
    split = inputs.used["split"].to_numpy()
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(config.seed)  # weights init and dropout; restored from last.pt on resume
        model = _model(config, len(labels), ctx.log, inputs.in_features).to(device)
        if device.type == "cuda" and config.input == "images":
            model = model.to(memory_format=torch.channels_last)
        step = ClassifierStep(model, make_optimizer(model.parameters(), config.optim))
        train = inputs.batches(split == "train", labels, train=True, device=device)
        val = inputs.batches(split == "val", labels, train=False, device=device)
        ctx.log(f"{config.model} on {config.input}: {train.n_samples} train / {val.n_samples} val rows, {len(labels)} labels, "
                f"{sum(p.numel() for p in model.parameters()):,} parameters, device {device}")
        result = fit(step, train, val, config.loop, ctx.run_dir, device=device, progress=ctx.progress, log=ctx.log)
    best = load_checkpoint(ctx.run_dir / "checkpoints" / "best.pt")
    if best is None:
        raise RuntimeError("no epoch produced a finite validation loss; nothing to score (training diverged)")
    model.load_state_dict(best["modules"]["model"])
    scored_mask = np.isin(split, ("val", "test"))
    scores = predict_scores(model, inputs.batches(scored_mask, labels, train=False, device=device), device)
    table = scored_table(inputs.used[scored_mask], labels, scores)
    _write_outputs(ctx.run_dir, table, result, config, labels, best["epoch"])
    return dict(TRAIN_CLASSIFIER.outputs)


def _write_outputs(folder: Path, table: pd.DataFrame, result, config: ClassifierSettings, labels: list[str], best_epoch: int,
                   seed: int | None = None) -> None:
    """``scored.parquet``, ``history.csv`` and ``metrics.json`` of one trained model in ``folder``."""
    extra = {} if seed is None else {"seed": seed}
    write_table(table, folder / "scored.parquet", {"run": {"model": config.model, "input": config.input, "best_epoch": best_epoch,
                                                           "labels": labels, **extra}})
    write_table(pd.DataFrame(result.history), folder / "history.csv")
    write_json(folder / "metrics.json", _metrics(table, labels, result, best_epoch))


TRAIN_CLASSIFIER = declare(
    "train-classifier", settings=ClassifierRunConfig, function=run_training,
    outputs={"scored": "scored.parquet", "history": "history.csv", "metrics": "metrics.json", "best_checkpoint": "checkpoints/best.pt"},
    gpu=lambda config: 1.0 if config["input"] == "images" else 0.25)  # the MLP/probe on embeddings: a quarter of a GPU


def ensemble_outputs(config: dict) -> dict[str, str]:
    """The outputs of a ``train-classifier-ensemble`` run of ``config``: the ensemble's ``history`` (members trained
    and mean losses per epoch) and, per seed, a ``train-classifier`` run's outputs suffixed ``-seed<k>``."""
    out = {"history": "history.csv"}
    for seed in config["seeds"]:
        name = member_name(seed)
        out |= {f"scored-{name}": f"{name}/scored.parquet", f"history-{name}": f"{name}/history.csv",
                f"metrics-{name}": f"{name}/metrics.json", f"best_checkpoint-{name}": f"checkpoints/best-{name}.pt"}
    return out


def run_ensemble_training(config_dict: dict, ctx) -> dict[str, str]:
    """The ``train-classifier-ensemble`` run: train every seed together (or resume), then score val and test with each
    seed's best checkpoint (see the module docstring)."""
    config = EnsembleRunConfig.model_validate(config_dict)
    cohort, labels = read_split_cohort(config.cohort, config.labels)
    device = torch.device(ctx.device)
    inputs = Inputs(config, cohort, config.cohort, progress=ctx.progress, log=ctx.log)
    split = inputs.used["split"].to_numpy()
    names = [member_name(seed) for seed in config.seeds]
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        members = []
        for seed in config.seeds:
            torch.manual_seed(seed)  # each seed's weights exactly as its own train-classifier run initialises them
            members.append(_model(config, len(labels), ctx.log if not members else lambda m: None, inputs.in_features))
        torch.manual_seed(config.seeds[0])  # dropout of the ensemble; restored from last.pt on resume
        model = StackedHead(members).to(device)
        step = EnsembleClassifierStep(model, make_optimizer(model.parameters(), config.optim), names)
        train = inputs.batches(split == "train", labels, train=True, device=device, seeds=config.seeds)
        val = inputs.batches(split == "val", labels, train=False, device=device)
        ctx.log(f"{config.model} on {config.input}, {len(names)} seeds trained together: {train.n_samples} train / {val.n_samples} val rows, "
                f"{len(labels)} labels, {sum(p.numel() for p in members[0].parameters()):,} parameters per seed, device {device}")
        result = fit(step, train, val, config.loop, ctx.run_dir, device=device, progress=ctx.progress, log=ctx.log)
    scored_mask = np.isin(split, ("val", "test"))
    scoring = inputs.batches(scored_mask, labels, train=False, device=device)
    head = members[0]
    for seed, name in zip(config.seeds, names, strict=True):
        best = load_checkpoint(ctx.run_dir / "checkpoints" / f"best-{name}.pt")
        if best is None:
            raise RuntimeError(f"{name}: no epoch produced a finite validation loss; nothing to score (training diverged)")
        head.load_state_dict(best["modules"]["model"])
        table = scored_table(inputs.used[scored_mask], labels, predict_scores(head.to(device), scoring, device))
        (ctx.run_dir / name).mkdir(exist_ok=True)
        _write_outputs(ctx.run_dir / name, table, result.members[name], config, labels, best["epoch"], seed)
    write_table(pd.DataFrame(result.history), ctx.run_dir / "history.csv")
    return ensemble_outputs(config_dict)


TRAIN_CLASSIFIER_ENSEMBLE = declare(
    "train-classifier-ensemble", settings=EnsembleRunConfig, function=run_ensemble_training, outputs=ensemble_outputs,
    gpu=0.25)  # several MLPs/probes on embeddings: still a quarter of a GPU


def _metrics(table: pd.DataFrame, labels: list[str], result, best_epoch: int) -> dict:
    from ..fairness import weighted_auc

    out = {"best_epoch": best_epoch, "epochs_run": len(result.history), "stopped_early": result.stopped_early,
           "train_samples_per_s": [row["samples_per_s"] for row in result.history], "auc": {}}
    for split in ("val", "test"):
        rows = table[table["split"] == split]
        out["auc"][split] = {}
        for label in labels:
            y, p = rows[f"y_{label}"].to_numpy(float), rows[f"p_{label}"].to_numpy(float)
            known = ~np.isnan(y)
            defined = known.any() and 0 < y[known].sum() < known.sum()
            out["auc"][split][label] = float(weighted_auc(y[known], p[known])) if defined else None
    return out


def _trained(run_dir: Path, seed: int | None) -> tuple[dict, ClassifierRunConfig, dict]:
    """(record, the model's run config, its best checkpoint) of a ``train-classifier`` run, or of seed ``seed`` of a
    ``train-classifier-ensemble`` run (whose config is then that seed's own ``train-classifier`` config).
    RadfairInputError naming the run when a seed is needed, not trained there, or given for a single run."""
    record = require_record(run_dir, {TRAIN_CLASSIFIER.name, TRAIN_CLASSIFIER_ENSEMBLE.name})
    if record["kind"] == TRAIN_CLASSIFIER.name:
        if seed is not None and seed != record["config"].get("seed"):
            raise RadfairInputError(f"{run_dir}: a train-classifier run of seed {record['config'].get('seed')}; --seed {seed} names "
                                    "another (only an ensemble run holds several seeds)")
        return record, ClassifierRunConfig.model_validate(record["config"]), _best_checkpoint(run_dir, record)
    seeds = record["config"]["seeds"]
    if seed not in seeds:
        raise RadfairInputError(f"{run_dir}: a train-classifier-ensemble run of seeds {seeds}; expected --seed one of them"
                                + (f", not {seed}" if seed is not None else ""))
    settings = {k: v for k, v in record["config"].items() if k != "seeds"}
    config = ClassifierRunConfig.model_validate({**settings, "seed": seed})
    return record, config, _best_checkpoint(run_dir, record, f"best_checkpoint-{member_name(seed)}")


def predict_cohort(run_dir: str | Path, cohort_path: str | Path, out: str | Path, *, root: str | None = None,
                   device: str = "cpu", progress: bool = True, seed: int | None = None, persist: bool = True) -> pd.DataFrame:
    """Score every row of any cohort with a trained run's best checkpoint (``radfair predict``); ``seed`` picks one
    seed of an ensemble run; ``persist=False``: images decoded for this scoring only, not added to the image cache
    (:func:`radfair.training.inputs.image_array`)."""
    check_device(device)
    run_dir = Path(run_dir)
    record, config, best = _trained(run_dir, seed)
    labels = config.labels
    config = config.model_copy(update={"root": str(Path(root).resolve()) if root else config.root, "missing_embeddings": "drop"})
    cohort = read_table(cohort_path, "cohort table")
    missing = [f"y_{k}" for k in labels if f"y_{k}" not in cohort.columns]
    for column in missing:  # scoring needs no labels; keep the contract's columns present
        cohort[column] = np.nan
    inputs = Inputs(config, cohort, str(cohort_path), progress=progress, log=lambda m: None, persist=persist)
    model = _model(config.model_copy(update={"weights": None}), len(labels), print, inputs.in_features).to(device)
    model.load_state_dict(best["modules"]["model"])
    scores = predict_scores(model, inputs.batches(np.ones(len(inputs.used), bool), labels, train=False, device=device), device)
    table = scored_table(inputs.used, labels, scores)
    write_table(table, out, {"run": {"run_dir": str(run_dir), "run_id": record["run_id"], "best_epoch": best["epoch"],
                                     "seed": config.seed}})
    return table


def _best_checkpoint(run_dir: Path, record: dict, name: str = "best_checkpoint") -> dict:
    best = load_checkpoint(run_output(run_dir, name))
    if best is None:
        raise RadfairInputError(f"{run_dir}: no best checkpoint yet (status {record.get('status')}); train it first")
    return best


def load_classifier(run_dir: str | Path, device: str = "cpu", seed: int | None = None) -> tuple[torch.nn.Module, ClassifierRunConfig]:
    """A finished image/embedding classifier run's best model, in eval mode, with its run config (``seed``: one seed
    of an ensemble run)."""
    _, config, best = _trained(Path(run_dir), seed)
    state = best["modules"]["model"]
    in_features = next(v.shape[1] for v in state.values() if v.ndim == 2) if config.model != "densenet121" else EMBEDDING_DIM
    model = _model(config.model_copy(update={"weights": None}), len(config.labels), lambda m: None, in_features).to(device)
    model.load_state_dict(state)
    return model.eval(), config


def train(out: str | Path, *, cohort: str | Path, labels: list[str] | None = None, device: str = "cpu", cpus: int = 0,
          overwrite: bool = False, progress: bool = True, **settings):
    """``radfair train``: resolve the settings into a run spec and execute it in ``out`` (a run folder).

    A finished run with the same settings and inputs is skipped; a killed one resumes.
    """
    from ..execution import execute

    check_device(device)
    _, chosen = read_split_cohort(cohort, labels)
    config = resolve_config(cohort=str(cohort), labels=chosen, **settings)
    spec = TRAIN_CLASSIFIER.spec(config, {"cohort": config.cohort}, cpus=cpus, device=device,
                                 label=f"{config.model}-{config.input}-seed{config.seed}")
    return execute(spec, out, progress=progress, overwrite=overwrite)

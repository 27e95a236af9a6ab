"""``radfair study emb-vs-img|reconstruction --plan``: what a config would run, before anything runs, without data.

One entry per run (kind, dataset, model, level, seed, its resolved settings and the resources its declared kind asks
for on the chosen device), the deviations from the paper (:mod:`radfair.studies.protocol`), and an estimate:
images per stage (counted from the releases' metadata when they are on disk -- the cohort and its patient-level
split, as the study would make them, no image or embedding read -- else the papers' counts; each dataset says which),
GPU hours from the throughputs measured in
``docs/benchmarks.md`` (only where one was measured; others are named as unmeasured, never guessed), and disk in GB by
kind of file: raw bytes before compression (uint8 images as written to PNG, NIfTI volumes at
:data:`VOLUME_VOXEL_BYTES`, image and slice caches, embeddings, checkpoints: best.pt of every run, last.pt with
Adam's moments only for the runs training at once), an upper bound. Study 2: every image is
degraded at every level; no reconstruction is stored: each scoring run (``predict-classifier``, ``score-volumes``)
reconstructs the test images into its scratch folder, scores them without entering the image cache and keeps a few
examples, so at most ``jobs`` test sets exist at once; a mitigation sweep's runs reconstruct their validation images
into scratch likewise.
"""

from __future__ import annotations

import functools
import importlib
from pathlib import Path

from ..execution.kinds import lookup
from ..io import write_json
from .emb_vs_img.tables import PAPER_SPLIT_IMAGES
from .protocol import deviations

#: docs/benchmarks.md, "Training throughput on a GPU" (H200, batch 48): training samples/s (seeds trained together: every
#: seed's samples; not measured on a GPU).
MEASURED_SAMPLES_PER_S = {"cuda": {("train-classifier", "densenet121"): 838.0, ("train-classifier", "mlp"): 19_808.0},
                          "cpu": {("train-classifier", "densenet121"): 4.0, ("train-classifier", "mlp"): 6_823.0,
                                  # "Five seeds trained together on CPU": samples of every seed per second, quiet repeats
                                  ("train-classifier-ensemble", "mlp"): 13_700.0}}
#: Study 1 Table 2 (train/val/test images); Study 2 §3.1 (CheXpert 224,316 images; UCSF-PDGM 501 volumes, 155 slices).
PAPER_IMAGES = PAPER_SPLIT_IMAGES
CHEXPERT_STUDY2, UCSF_VOLUMES, UCSF_SLICES = 224_316, 501, 155
#: UCSF-PDGM's in-plane grid (240 x 240 x 155, the SRI24 atlas space of its preprocessed volumes; Calabrese et al.
#: 2022): the size of the volumes radfair writes and of the reconstructors' slices (they train at the volumes' own size);
#: read from the first volume's header instead when the release is on disk (:func:`volume_grid`)
UCSF_IN_PLANE = 240
#: bytes per voxel of the MRI volumes radfair writes (clean working copies, degraded, reconstructed): uint16 NIfTI
#: (:func:`radfair.io.write_unit_volume`)
VOLUME_VOXEL_BYTES = 2


def _parameters(build) -> int | None:
    """Parameters of the network ``build()`` makes, on the meta device (no memory, no weights) or, where its set-up
    computes on tensors (IR-SDE's noise schedule), on the CPU; None if it cannot be built."""
    import torch

    try:
        with torch.device("meta"):
            made = build()
    except Exception:  # noqa: BLE001 - an estimate: an unbuildable network is left out, never guessed
        try:
            made = build()
        except Exception:  # noqa: BLE001
            return None
    modules = made.modules.values() if hasattr(made, "modules") and isinstance(made.modules, dict) else [made]
    return int(sum(p.numel() for module in modules for p in module.parameters()))


def _reconstructor(settings):
    from ..training.reconstruction import build_reconstructor

    return build_reconstructor(settings.network())


def _classifier(model: str, n_labels: int):
    from ..models import build_classifier

    return build_classifier(model, n_labels)
_MODULES = ("radfair.training.classify", "radfair.training.reconstruct_run", "radfair.training.segmenter",
            "radfair.training.slice_classifier", "radfair.studies.reconstruction.scoring", "radfair.mitigation._run")


def _entry(kind: str, device: str, settings: dict, images: int, epochs: int, **where) -> dict:
    declared = lookup(kind)
    model = where.get("model")
    rate = MEASURED_SAMPLES_PER_S["cuda" if device.startswith("cuda") else "cpu"].get((kind, model))
    hours = images * epochs / rate / 3600 if rate else None
    return {"kind": kind, **where, "settings": settings,
            "resources": {"cpus": declared.cpus, "gpus": declared.gpu_share({**settings, "model": model, "input": "embeddings" if model in ("mlp", "linear") else "images"}, device)},
            "estimate": {"training_images": images, "epochs": epochs,
                         "gpu_hours" if device.startswith("cuda") else "hours": None if hours is None else round(hours, 2),
                         **({} if rate else {"throughput": "not measured (docs/benchmarks.md)"})}}


@functools.lru_cache(maxsize=8)
def _release_cohort(source: str, root: str, options: tuple = ()):
    """``source``'s cohort built from the release at ``root`` (metadata only; read once per plan: :func:`write_plan`
    clears the cache), or None when the release is not there or not readable. ``options``: build_cohort's keyword
    arguments as sorted items."""
    from ..data.cohort import build_cohort
    from ..errors import RadfairInputError

    if not root or not Path(root).exists():
        return None
    try:
        return build_cohort(source, root, **dict(options))[0]
    except (RadfairInputError, OSError):
        return None


def counted_split(source: str, root: str, fractions, seed: int, **options) -> tuple[int, int, int, int] | None:
    """(train, val, test images, patients) of ``source``'s cohort at ``root`` under the study's patient-level split,
    from the release's metadata alone; None when the release is not there (or not readable)."""
    from ..data.splits import assign_splits

    cohort = _release_cohort(source, root, tuple(sorted(options.items())))
    if cohort is None:
        return None
    counts = assign_splits(cohort, fractions, seed).value_counts()
    return (int(counts.get("train", 0)), int(counts.get("val", 0)), int(counts.get("test", 0)), int(cohort["patient_id"].nunique()))


def volume_grid(source: str, root: str) -> tuple[int, int] | None:
    """(in-plane size, slices) of the first volume of ``source``'s release at ``root``, from its NIfTI header alone
    (no voxel read); None when the release is not there or not readable."""
    import nibabel as nib

    cohort = _release_cohort(source, root)
    if cohort is None or cohort.empty:
        return None
    try:
        shape = nib.load(str(cohort["path"].iloc[0])).shape
    except OSError:
        return None
    return int(shape[0]), int(shape[2]) if len(shape) > 2 else 1


def plan_study1(config) -> dict:
    from ..data import registry

    runs, disk = [], {"embeddings_gb": 0.0, "image_cache_gb": 0.0}
    counted, sources = {}, {}
    for dataset in config.datasets:
        members = registry.get(dataset).parts or (dataset,)
        parts = [counted_split(s, config.root_of(s), config.split.fractions, config.split.seed, uncertain=config.uncertain)
                 for s in members]
        if all(p is not None for p in parts):
            counted[dataset] = tuple(sum(p[k] for p in parts) for k in range(3))
            sources[dataset] = "counted from the release metadata (before images without an embedding are dropped)"
        else:
            sources[dataset] = "the paper's Table 2 (release not on disk)" if dataset in PAPER_IMAGES else "unknown (release not on disk)"
    for dataset in config.datasets:
        train, val, test = counted.get(dataset) or PAPER_IMAGES.get(dataset, (0, 0, 0))
        for arm, a in config.arms.items():
            if a.trains_together:  # one run trains every seed: seeds x images per epoch
                runs.append(_entry("train-classifier-ensemble", config.device, a.model_dump(mode="json"), train * len(config.seeds),
                                   a.loop.epochs, dataset=dataset, model=a.model, arm=arm, level=None, seed=None, seeds=list(config.seeds)))
            else:
                for seed in config.seeds:
                    runs.append(_entry("train-classifier", config.device, a.model_dump(mode="json"), train, a.loop.epochs,
                                       dataset=dataset, model=a.model, arm=arm, level=None, seed=seed))
            total = train + val + test
            if a.model in ("mlp", "linear"):
                disk["embeddings_gb"] += total * 1376 * 4 / 1e9 if dataset != "all" else 0.0
            else:
                # one shared cache per (image, size): ALL reuses the MIMIC and CheXpert rows
                disk["image_cache_gb"] += total * a.image_size ** 2 / 1e9 if dataset != "all" or len(config.datasets) == 1 else 0.0
    stages = {"train images per run": {d: (counted.get(d) or PAPER_IMAGES.get(d, (0,)))[0] for d in config.datasets},
              "source": sources}
    return {"runs": runs, "images": stages, "disk": disk}


def plan_study2(config) -> dict:
    config = config.effective()
    runs, disk, stages = [], {}, {}
    checkpoints: dict[str, list] = {"xray": [], "mri": []}  # part -> (parameters of a network, training runs of it)
    sizes: dict[str, int | None] = {}

    def size_of(reconstructor) -> int | None:  # each reconstructor's network built once (IR-SDE's on the CPU)
        key = reconstructor.model_dump_json()
        if key not in sizes:
            sizes[key] = _parameters(lambda: _reconstructor(reconstructor))
        return sizes[key]
    share = config.split.reconstruction_share
    if config.xray is not None:
        # the paper's image count is CheXpert's; another X-ray dataset's is unknown before its data is read (0, as Study 1)
        x = config.xray
        found = counted_split(x.source, config.root_of("xray"), config.split.fractions, config.split.seed)
        images = sum(found[:3]) if found else CHEXPERT_STUDY2 if x.source == "chexpert" else 0
        train = found[0] if found else int(images * config.split.fractions[0])
        recon_train = train if "xray" in config.split.shared_training else int(train * share)
        clf_train = train if "xray" in config.split.shared_training else train - recon_train
        levels = [f"xray_{x.degradation.mode}_{int(p)}" for p in x.degradation.photons]
        stages[x.source] = {"classifier training": clf_train, "reconstructor training": recon_train,
                            "degraded (all images x levels)": images * len(levels),
                            "source": "counted from the release metadata" if found else
                            "the paper's count (§3.1; release not on disk)" if x.source == "chexpert" else "unknown (release not on disk)"}
        c = x.classifier
        runs.append(_entry("train-classifier", config.device, c.model_dump(mode="json"), clf_train, c.loop.epochs,
                           dataset=x.source, model=c.model, level=None, seed=c.seed))
        for name, r in x.reconstructors.items():
            for level in levels:
                runs.append(_entry("train-reconstructor", config.device, r.model_dump(mode="json"), recon_train, r.loop.epochs,
                                   dataset=x.source, model=name, level=level, seed=x.training.seed))
                runs.append(_entry("predict-classifier", config.device, {}, 0, 0, dataset=x.source, model=c.model, level=level,
                                   seed=c.seed))
        size = x.degradation.size
        test = found[2] if found else int(images * config.split.fractions[2])
        disk["xray_clean_and_degraded_gb"] = images * size ** 2 * (1 + len(levels)) / 1e9  # every image, every level (PNG)
        # each scoring run reconstructs the test images into its scratch and keeps a few examples: at most `jobs` sets
        disk["xray_reconstructed_gb"] = test * size ** 2 * max(1, config.jobs) / 1e9
        # decoded copies: the reconstructors read their pairs straight from the working-size PNGs (no copy: FileImages),
        # the classifier its clean images from a cache at its own size (none when that is the working size);
        # reconstructions are scored without caching (image_array persist=False)
        classifier_size = c.image_size or size
        disk["xray_image_cache_gb"] = ((images - recon_train) * classifier_size ** 2 if classifier_size != size else 0) / 1e9
        weights = [(size_of(r), len(levels)) for r in x.reconstructors.values()]
        weights.append((_parameters(lambda: _classifier(c.model, len(x.labels))), 1))
        checkpoints["xray"] = weights
    if config.mri is not None:
        m = config.mri
        found = counted_split("ucsf-pdgm", config.root_of("mri"), config.split.fractions, config.split.seed)
        patients = found[0] if found else int(UCSF_VOLUMES * config.split.fractions[0])
        volumes = sum(found[:3]) if found else UCSF_VOLUMES
        recon = patients if "mri" in config.split.shared_training else int(patients * share)
        down = patients if "mri" in config.split.shared_training else patients - recon
        levels = [f"mri_{m.degradation.mask}_R{a:g}" for a in m.degradation.accelerations]
        stages["ucsf-pdgm"] = {"downstream training volumes": down, "reconstructor training volumes": recon,
                               "slices per volume": UCSF_SLICES,
                               "source": "counted from the release metadata" if found else "the paper's count (§3.1; release not on disk)"}
        for kind, model, s in (("train-slice-classifier", m.classifier.model, m.classifier), ("train-segmenter", "unet", m.segmenter)):
            runs.append(_entry(kind, config.device, s.model_dump(mode="json"), down * UCSF_SLICES, s.loop.epochs,
                               dataset="ucsf-pdgm", model=model, level=None, seed=s.seed))
        for name, r in m.reconstructors.items():
            for level in levels:
                runs.append(_entry("train-reconstructor", config.device, r.model_dump(mode="json"), recon * UCSF_SLICES, r.loop.epochs,
                                   dataset="ucsf-pdgm", model=name, level=level, seed=m.training.seed))
                runs.append(_entry("score-volumes", config.device, {}, 0, 0, dataset="ucsf-pdgm", model=name, level=level, seed=0))
        in_plane, _ = volume_grid("ucsf-pdgm", config.root_of("mri")) or (UCSF_IN_PLANE, UCSF_SLICES)
        stages["ucsf-pdgm"]["in-plane size"] = in_plane
        slice_bytes, own_bytes = m.slices.size ** 2, in_plane ** 2  # downstream slices; the volumes' own grid
        volume_bytes = UCSF_SLICES * own_bytes * VOLUME_VOXEL_BYTES
        test_volumes = found[2] if found else int(UCSF_VOLUMES * config.split.fractions[2])
        disk["mri_clean_and_degraded_gb"] = volumes * volume_bytes * (1 + len(levels)) / 1e9
        disk["mri_reconstructed_gb"] = test_volumes * volume_bytes * max(1, config.jobs) / 1e9  # scratch, as X-ray
        # uint8 slice caches: the downstream models' clean training slices (at slices.size) and the reconstructors'
        # clean + degraded pairs of every level (at the volumes' own size); a scoring run slices its scratch
        # reconstructions in scratch (removed with it), never in the shared cache
        disk["mri_slice_cache_gb"] = volumes * UCSF_SLICES * (slice_bytes + own_bytes * (1 + len(levels))) / 1e9
        weights = [(size_of(r), len(levels)) for r in m.reconstructors.values()]
        checkpoints["mri"] = weights
    if config.mitigation is not None:
        mit = config.mitigation
        for dataset in mit.datasets:
            part = config.xray if config.xray is not None and dataset == config.xray.source else config.mri
            if part is None:
                continue
            key = "xray" if part is config.xray else "mri"
            for name in mit.reconstructors or list(part.reconstructors):
                for strategy in ["standard", *mit.strategies]:
                    for weight in ([None] if strategy in ("standard", "reweighting") else mit.weights_by_dataset.get(dataset, mit.weights)):
                        runs.append(_entry("train-mitigated-reconstructor", config.device, {"strategy": strategy, "weight": weight,
                                                                                   "epochs": mit.epochs, **mit.settings},
                                           0, mit.epochs, dataset=dataset, model=name, level="middle", seed=0))
                        checkpoints[key].append((size_of(part.reconstructors[name]), 1))
                    # the sweep runs write no images (validation reconstructions are scratch, removed once scored); the
                    # chosen run of each (reconstructor, strategy), and the fine-tune, is scored like any reconstructor: its
                    # scoring run reconstructs the test images into scratch (counted in *_reconstructed_gb)
                    scorer = "predict-classifier" if key == "xray" else "score-volumes"
                    runs.append(_entry(scorer, config.device, {}, 0, 0, dataset=dataset, model=name, level="middle", seed=0))
    for key, entries in checkpoints.items():
        if entries and all(n is not None for n, _ in entries):
            # best.pt holds the weights (float32) of every run; last.pt the weights and Adam's two moments while a run
            # trains, and only its history once it is done: three more copies for each of the `jobs` runs at a time
            largest = sorted((n for n, _ in entries), reverse=True)[:max(1, config.jobs)]
            disk[f"{key}_checkpoints_gb"] = (sum(n * runs_of * 4 for n, runs_of in entries) + sum(largest) * 3 * 4) / 1e9
    return {"runs": runs, "images": stages, "disk": disk}


def write_plan(study: str, config, out: str | Path, device: str | None = None) -> dict:
    """Write ``out/plan.json`` and return it; runs nothing and reads no image (only the releases' metadata, if there)."""
    for module in _MODULES:
        importlib.import_module(module)
    if device:
        config = config.model_copy(update={"device": device})
    try:
        body = plan_study1(config) if study == "emb-vs-img" else plan_study2(config)
    finally:
        _release_cohort.cache_clear()  # read once per plan; a later plan reads the releases as they are then
    dump = (config.effective() if study == "reconstruction" else config).model_dump(mode="json")
    hours_key = "gpu_hours" if config.device.startswith("cuda") else "hours"
    known = [r["estimate"][hours_key] for r in body["runs"] if r["estimate"].get(hours_key) is not None]
    plan = {"study": study, "config": dump, "device": config.device, "runs": body["runs"],
            "deviations": deviations(study, dump),
            "estimate": {"images": body["images"], hours_key: round(sum(known), 1),
                         "runs_without_measured_throughput": sum(r["estimate"].get(hours_key) is None for r in body["runs"]),
                         "disk_gb": {k: round(v, 1) for k, v in body["disk"].items()},
                         "source": "images: counted from the release metadata where it is on disk, else the papers' counts (per "
                                   "dataset in images.source); throughputs: docs/benchmarks.md"}}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "plan.json", plan)
    return plan


def summary(plan: dict) -> list[str]:
    from collections import Counter

    e = plan["estimate"]
    hours_key = "gpu_hours" if "gpu_hours" in e else "hours"
    kinds = Counter(r["kind"] for r in plan["runs"])
    own = sum(d.get("source") != "known" for d in plan["deviations"])
    return [f"plan {plan['study']} on {plan['device']}: {len(plan['runs'])} runs ("
            + ", ".join(f"{n} {k}" for k, n in kinds.items()) + ")",
            (f"  {hours_key}: unknown for {e['runs_without_measured_throughput']} of {len(plan['runs'])} runs (no measured "
             f"throughput in docs/benchmarks.md); {e[hours_key]} h for the others, at full epochs (early stopping shortens it)"
             if e["runs_without_measured_throughput"] else
             f"  {hours_key}: {e[hours_key]} h at full epochs, from measured throughputs (an upper bound: early stopping shortens it)"),
            "  disk GB: " + ", ".join(f"{k} {v}" for k, v in e["disk_gb"].items()),
            "  images: " + "; ".join(f"{k}: {v}" for k, v in e["images"].items()),
            f"  deviations from the paper: {len(plan['deviations'])} ({own} set by this config, "
            f"{len(plan['deviations']) - own} that radfair cannot remove yet)",
            *[f"    - {d['setting']}: paper {d['paper']}; radfair {d['radfair']} ({d['why']})" for d in plan["deviations"]]]


__all__ = ["summary", "write_plan"]

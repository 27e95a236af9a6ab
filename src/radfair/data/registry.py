"""The dataset registry: every dataset radfair reads declares itself here, next to its loader.

A :class:`Dataset` says what the dataset is called, how its release is recognised (marker files relative
to the release folder, searched by :func:`radfair.data.discover.find_release`), how it is loaded, its label
set and how the release's label names map to the canonical ones, its attributes and its default split rule.
``radfair cohort``, ``radfair discover``-style release search, the CLI help and both studies' configs read
the registry; adding a dataset is one module that calls :func:`register` (imported by radfair, or named in
the ``radfair.datasets`` entry-point group of an installed package).

The built-in datasets live in ``chexpert.py``, ``mimic.py``, ``ucsf_pdgm.py``, ``nih_cxr14.py``,
``manifest.py``; the CheXpert + MIMIC union ``all`` is declared in ``cohort.py``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path

import pandas as pd

from ..errors import BAD_OPTION, RadfairInputError


@dataclass(frozen=True)
class LoadRequest:
    """What ``radfair cohort`` passes to a loader: the user's ``--root`` (a folder, or a file for the
    manifest), an optional second root (MIMIC-IV beside MIMIC-CXR-JPG), the uncertain-label policy and the race
    scheme (:data:`radfair.data.race.RACE_SCHEMES`; a loader with race harmonises it under this scheme)."""

    root: Path
    extra_root: Path | None = None
    uncertain: str = "zeros"
    race_scheme: str = "six-groups"


@dataclass(frozen=True)
class Dataset:
    """One dataset's declaration.

    ``load(request) -> (cohort, provenance)`` returns the canonical cohort table (``schema.py``) before the
    view filter, and a JSON-able provenance dict with at least ``release``. ``releases`` maps each release
    folder the loader searches for to its marker file(s) (globs allowed). ``labels`` maps canonical label
    names (``y_<name>`` columns) to the release's names; ``None`` means the labels are read from the data
    (the manifest). ``modality`` is ``"xray"`` (2-D radiographs; the frontal view filter applies) or ``"mri"``
    (volumes). ``split_rule`` is the default rule (``"patient"``: seeded patient-level fractions; ``"official"``:
    the release's own patient split kept in ``official_split``). ``parts`` makes a union of other datasets.
    ``synthetic`` is the folder of ``radfair synth`` output holding this dataset's release (None: not written).
    """

    name: str
    description: str
    load: Callable[[LoadRequest], tuple[pd.DataFrame, dict]] | None
    releases: dict[str, tuple[str, ...]] = field(default_factory=dict)
    labels: dict[str, str] | None = None
    attributes: tuple[str, ...] = ("sex", "age_group")
    modality: str = "xray"
    split_rule: str = "patient"
    parts: tuple[str, ...] = ()
    synthetic: str | None = None
    root_is_file: bool = False

    def label_names(self) -> list[str]:
        """Canonical label names (without ``y_``) in declaration order; empty when read from the data."""
        return list(self.labels or {})


_REGISTRY: dict[str, Dataset] = {}
#: Modules that declare the built-in datasets (imported on first use of the registry).
BUILTIN_MODULES = ("chexpert", "mimic", "ucsf_pdgm", "nih_cxr14", "manifest", "cohort")
_loaded = False


def register(dataset: Dataset, replace: bool = False) -> Dataset:
    """Add ``dataset`` to the registry (``replace=True`` to redeclare a name, e.g. in a test); returns it."""
    if dataset.name in _REGISTRY and not replace and _REGISTRY[dataset.name] != dataset:
        raise ValueError(f"dataset {dataset.name!r} is already registered")
    _REGISTRY[dataset.name] = dataset
    return dataset


def unregister(name: str) -> None:
    _REGISTRY.pop(name, None)


def _load_builtins() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for module in BUILTIN_MODULES:
        importlib.import_module(f"{__package__}.{module}")
    for entry in entry_points(group="radfair.datasets"):
        entry.load()


def datasets() -> dict[str, Dataset]:
    """Every registered dataset by name (built-ins first, then plug-ins and test datasets)."""
    _load_builtins()
    return dict(_REGISTRY)


def names(modality: str | None = None) -> list[str]:
    return [n for n, d in datasets().items() if modality is None or d.modality == modality]


def get(name: str, option: str = "--source") -> Dataset:
    """The dataset called ``name``; an unknown name is a RadfairInputError listing the registered ones."""
    known = datasets()
    if name not in known:
        raise RadfairInputError(BAD_OPTION.format(option=option, value=name, expected=list(known)))
    return known[name]


def release_markers() -> dict[str, tuple[str, ...]]:
    """Release name -> marker path(s), over every registered dataset (what ``find_release`` searches for)."""
    out: dict[str, tuple[str, ...]] = {}
    for dataset in datasets().values():
        out.update(dataset.releases)
    return out


def help_text(modality: str | None = None) -> str:
    """One line for the CLI: the registered dataset names."""
    return ", ".join(names(modality))


def check_name(name: str, modality: str | None = None) -> str:
    """``name`` if it is a registered dataset (of ``modality``); else ValueError (a config validator's error)."""
    allowed = names(modality)
    if name not in allowed:
        kind = f" {modality}" if modality else ""
        raise ValueError(f"{name!r} is not a registered{kind} dataset; expected one of {allowed}")
    return name

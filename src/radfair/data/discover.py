"""Find a dataset release below a user-given folder by its marker file(s).

``--root`` may be the release folder itself or any folder above it; the first match in
breadth-first order (shallowest) wins; the markers come from the dataset registry, and ties are broken alphabetically so the choice is stable.
A marker may be a glob pattern (``UCSF-PDGM-metadata_v*.csv``: every numbered metadata version).
"""

from __future__ import annotations

from pathlib import Path

from ..errors import MISSING_FILE, MISSING_FOLDER, RELEASE_NOT_FOUND, RadfairInputError

MAX_DEPTH = 6


def find_release(root: str | Path, release: str) -> Path:
    """Return the folder holding the marker(s) a registered dataset declares for ``release``
    (``Dataset.releases``, see ``registry.py``), searching ``root`` and below."""
    from .registry import release_markers  # the registry imports the loaders, which import this module

    root = Path(root)
    if not root.is_dir():
        raise RadfairInputError(MISSING_FOLDER.format(path=root, what="expected a dataset release or a folder above it"))
    markers = release_markers()[release]
    marker = " or ".join(markers)
    level = [root]
    for _ in range(MAX_DEPTH + 1):
        for folder in level:
            if any(_has_marker(folder, m) for m in markers):
                return folder
        level = sorted(
            (child for folder in level for child in _subdirs(folder)),
            key=lambda p: str(p),
        )
        if not level:
            break
    raise RadfairInputError(RELEASE_NOT_FOUND.format(root=root, release=release, marker=marker))


def _has_marker(folder: Path, marker: str) -> bool:
    if "*" in marker:
        return any(p.is_file() for p in folder.glob(marker))
    return (folder / marker).is_file()


def _subdirs(folder: Path):
    try:
        # skip image folders quickly: patient/study trees never hold a release marker
        return [c for c in folder.iterdir() if c.is_dir() and not c.name.startswith((".", "patient", "p1"))]
    except PermissionError:
        return []


def find_file(folders, names: tuple[str, ...], what: str) -> Path:
    """The first of ``names`` found in ``folders`` (in order; one folder means it and its parent)."""
    if isinstance(folders, Path):
        folders = (folders, folders.parent)
    for base in folders:
        for name in names:
            if (base / name).is_file():
                return base / name
    raise RadfairInputError(MISSING_FILE.format(path=folders[0] / names[0], what=what))

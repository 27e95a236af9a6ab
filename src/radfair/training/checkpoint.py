"""Checkpoint files: written atomically, read with ``weights_only=True``.

``last.pt`` (every epoch, and every ``checkpoint_minutes`` inside an epoch) holds everything a resumed
run needs to continue exactly: every module, optimiser and scheduler state, the epoch and batch reached,
the early-stopping state, the history so far and the global torch RNG states (CPU and CUDA), which drive
dropout; once training is done, only the epoch, the early-stopping state and the history. ``best.pt`` holds the
module weights of the best validation epoch, as its own file.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..execution.devices import check_device  # noqa: F401 - re-exported for the training modules
from ..io import atomic_path

FORMAT = 1


def rng_state() -> dict:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: Path, payload: dict) -> None:
    with atomic_path(path, suffix=".tmp") as tmp:
        torch.save({"format": FORMAT, **payload}, tmp)


def load_checkpoint(path: Path) -> dict | None:
    """The checkpoint at ``path``, or None if there is none."""
    if not path.is_file():
        return None
    return torch.load(path, map_location="cpu", weights_only=True)

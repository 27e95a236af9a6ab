"""Checkpoint files: written atomically, read with ``weights_only=True``.

``last.pt`` (every epoch, and every ``checkpoint_minutes`` inside an epoch) holds everything a resumed
run needs to continue exactly: every module, optimiser and scheduler state, the epoch and batch reached,
the early-stopping state, the history so far and the global torch RNG states (CPU and CUDA), which drive
dropout. ``best.pt`` holds the module weights of the best validation epoch, as its own file.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..io import atomic_path

FORMAT = 1


def check_device(device: str) -> str:
    """``cpu`` or ``cuda[:N]`` that exists here; anything else is a one-line input error."""
    from ..errors import BAD_OPTION, RadfairInputError

    kind = str(device).split(":")[0]
    if kind not in ("cpu", "cuda"):
        raise RadfairInputError(BAD_OPTION.format(option="--device", value=device, expected="cpu or cuda"))
    if kind == "cuda" and not torch.cuda.is_available():
        raise RadfairInputError(BAD_OPTION.format(option="--device", value=device, expected="cpu (no CUDA device is available here)"))
    return str(device)


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

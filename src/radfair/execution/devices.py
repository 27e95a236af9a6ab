"""Devices where a run executes: the check, and the local executor's round-robin over the visible GPUs.

* :func:`check_device` runs inside :func:`radfair.execution.store.execute`, i.e. in the process (or Ray worker)
  that executes the run, so a driver without a GPU can plan CUDA runs for workers that have one.
* ``--jobs N`` on the local executor: worker process ``i`` (0..N-1) runs every ``cuda`` run on ``cuda:(i mod G)``,
  G = the GPUs visible to the driver (:func:`worker_device`); a run given an explicit ``cuda:k`` keeps it.
* Ray: each task asks for ``num_gpus = RunSpec.gpus`` (a whole GPU or a share); Ray sets the task's
  ``CUDA_VISIBLE_DEVICES``, so ``cuda`` there is the GPU Ray assigned.
"""

from __future__ import annotations

import socket

from ..errors import BAD_OPTION, RadfairInputError


def visible_gpus() -> int:
    """Number of CUDA devices this process can see (0 without CUDA)."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def check_device(device: str) -> str:
    """``cpu``, ``cuda`` or ``cuda:N`` that exists in this process; anything else is a one-line input error
    naming the host (the check runs where the run executes)."""
    kind, _, index = str(device).partition(":")
    if kind not in ("cpu", "cuda") or (index and not index.isdigit()) or (kind == "cpu" and index):
        raise RadfairInputError(BAD_OPTION.format(option="--device", value=device, expected="cpu, cuda or cuda:N"))
    if kind == "cuda":
        count = visible_gpus()
        if not count:
            raise RadfairInputError(BAD_OPTION.format(
                option="--device", value=device, expected=f"cpu (no CUDA device is available on {socket.gethostname()})"))
        if index and int(index) >= count:
            raise RadfairInputError(BAD_OPTION.format(
                option="--device", value=device, expected=f"cuda:0 to cuda:{count - 1} on {socket.gethostname()}"))
    return str(device)


def worker_device(device: str, worker: int | None, n_gpus: int) -> str:
    """The device local worker ``worker`` runs a ``device`` run on: plain ``cuda`` becomes ``cuda:(worker mod
    n_gpus)``; ``cpu``, an explicit ``cuda:k``, no worker index or no visible GPU leave it unchanged."""
    if device != "cuda" or worker is None or n_gpus < 1:
        return device
    return f"cuda:{worker % n_gpus}"


__all__ = ["check_device", "visible_gpus", "worker_device"]

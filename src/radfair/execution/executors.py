"""Executors: run a grid of :class:`RunSpec` in this process, in local worker processes, or on Ray.

All three call the same :func:`radfair.execution.store.execute` on the same run folders, so a grid gives
the same files whichever runs it, and any of them can finish a grid another one started. Bit-identical
numbers across executors need the same intra-op thread count per run (``RunSpec.cpus``; set explicitly,
since Ray would otherwise set it from the task's CPUs).

* ``local``: sequential (``jobs=1``, progress bars per run) or ``jobs`` spawned processes; worker ``i`` runs
  ``cuda`` runs on ``cuda:(i mod G)`` over the G visible GPUs (:mod:`radfair.execution.devices`).
* ``ray``: each run is a Ray task asking for ``num_cpus=spec.cpus`` and ``num_gpus=spec.gpus``, on the
  cluster at ``address`` (``auto`` = the running cluster; none = a local one started for the grid).
  On a multi-node cluster the store folder must be on a shared file system and radfair installed on
  every node.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import warnings
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from rich.progress import Progress

from ..errors import BAD_OPTION, RadfairInputError
from .devices import visible_gpus, worker_device
from .store import RunBusy, RunOutcome, RunSpec, execute, plan

EXECUTORS = ("local", "ray")


#: (worker index, visible GPUs) of a local worker process, set by :func:`_init_worker`
_WORKER: tuple[int | None, int] = (None, 0)


def _init_worker(slots, n_gpus: int) -> None:
    global _WORKER
    _WORKER = (slots.get(), n_gpus)


def _execute_quietly(spec: RunSpec, run_dir: str, progress: bool = False) -> RunOutcome:
    """Run one spec and never raise, so one failed run does not stop the grid (failures are reported at the end;
    the traceback is in the run's ``run.log``). In a local worker, ``cuda`` becomes the worker's GPU."""
    device = worker_device(spec.device, *_WORKER)
    if device != spec.device:
        spec = dataclasses.replace(spec, device=device)
    try:
        return execute(spec, run_dir, progress=progress)
    except RadfairInputError as exc:
        return RunOutcome(spec.run_id, run_dir, spec.label, "failed", error=str(exc), input_error=True)
    except RunBusy as exc:
        return RunOutcome(spec.run_id, run_dir, spec.label, "busy", error=str(exc))
    except Exception as exc:  # noqa: BLE001 - recorded in run.json and reported by the grid
        return RunOutcome(spec.run_id, run_dir, spec.label, "failed", error=f"{type(exc).__name__}: {exc}")


def run_grid(specs: Sequence[RunSpec], store_root: str | Path, *, executor: str = "local", jobs: int = 1,
             address: str | None = None, progress: bool = True) -> list[RunOutcome]:
    """Execute every spec under ``store_root/<run_id>``; finished runs are skipped. Outcomes in spec order.

    Raises ``RadfairInputError`` if any run failed on bad input, ``RuntimeError`` if any failed otherwise
    (after every other run has finished; the failures are in each run's ``run.json`` and ``run.log``).
    """
    if executor not in EXECUTORS:
        raise RadfairInputError(BAD_OPTION.format(option="--executor", value=executor, expected=list(EXECUTORS)))
    if jobs < 1:
        raise RadfairInputError(BAD_OPTION.format(option="--jobs", value=jobs, expected="a positive integer"))
    store_root = Path(store_root)
    dirs = [str(store_root / spec.run_id) for spec in specs]
    for spec, run_dir in zip(specs, dirs, strict=True):
        plan(spec, run_dir)
    if executor == "ray":
        outcomes = _run_ray(specs, dirs, address, progress)
    elif jobs == 1:
        outcomes = []
        with Progress(transient=True, disable=not progress) as bar:
            task = bar.add_task("runs", total=len(specs))
            for spec, run_dir in zip(specs, dirs, strict=True):
                bar.console.print(f"run {spec.label or spec.run_id} -> {run_dir}", markup=False, highlight=False)
                outcomes.append(_execute_quietly(spec, run_dir, progress))
                bar.advance(task)
    else:
        outcomes = _run_processes(specs, dirs, jobs, progress)
    _raise_failures(outcomes)
    return outcomes


def _run_processes(specs, dirs, jobs: int, progress: bool, n_gpus: int | None = None) -> list[RunOutcome]:
    """``jobs`` spawned workers, worker ``i`` on GPU ``i mod n_gpus`` (default: the GPUs visible here) for ``cuda`` runs."""
    outcomes: list[RunOutcome | None] = [None] * len(specs)
    context = multiprocessing.get_context("spawn")  # never fork a process that holds torch threads
    slots = context.Queue()
    for worker in range(jobs):
        slots.put(worker)
    n_gpus = visible_gpus() if n_gpus is None and any(s.device == "cuda" for s in specs) else (n_gpus or 0)
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=_init_worker, initargs=(slots, n_gpus)) as pool, \
            Progress(transient=True, disable=not progress) as bar:
        task = bar.add_task(f"runs ({jobs} processes)", total=len(specs))
        futures = {pool.submit(_execute_quietly, spec, run_dir): i for i, (spec, run_dir) in enumerate(zip(specs, dirs, strict=True))}
        for future in as_completed(futures):
            outcomes[futures[future]] = future.result()
            bar.advance(task)
    return outcomes  # type: ignore[return-value]


def _run_ray(specs, dirs, address: str | None, progress: bool) -> list[RunOutcome]:
    try:
        import ray
    except ImportError:
        raise RadfairInputError("--executor ray: the ray package is not installed; expected `pip install radfair[ray]`") from None
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        remote = ray.remote(_execute_quietly)
        refs = [remote.options(num_cpus=spec.cpus or 1, num_gpus=spec.gpus).remote(spec, run_dir)
                for spec, run_dir in zip(specs, dirs, strict=True)]
        outcomes: list[RunOutcome] = []
        with Progress(transient=True, disable=not progress) as bar:
            task = bar.add_task("runs (ray)", total=len(refs))
            pending = list(refs)
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                bar.advance(task, len(done))
            outcomes = ray.get(refs)
        return outcomes
    finally:
        if started_here:
            ray.shutdown()


def _raise_failures(outcomes: Sequence[RunOutcome]) -> None:
    busy = [o for o in outcomes if o.status == "busy"]
    for o in busy:
        warnings.warn(f"{o.run_dir}: still running in another process; not waited for", UserWarning, stacklevel=3)
    failed = [o for o in outcomes if o.status == "failed"]
    if not failed:
        return
    first = failed[0]
    more = f" (and {len(failed) - 1} more failed runs; see their run.json)" if len(failed) > 1 else ""
    if any(o.input_error for o in failed):
        raise RadfairInputError(f"{first.error}{more}")
    raise RuntimeError(f"run {first.label or first.run_id} failed: {first.error}{more}; log in {first.run_dir}/run.log")

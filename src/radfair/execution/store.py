"""The run store: a run is a folder whose name is the hash of what made it.

``run_id = sha256({kind, resolved config, sha256 of every input file})[:16]``; the study engine puts runs
under ``<store>/<run_id>/`` and ``radfair train --out DIR`` uses ``DIR`` itself. A run folder holds:

* ``run.json``: kind, config, input checksums, status (pending, running, done, failed), attempts with
  timings, package versions, device, seed, and every output with its sha256; always written atomically;
* ``run.log``: what the run printed, appended across attempts;
* ``checkpoints/`` and the outputs the run function wrote.

:func:`execute` decides: a ``done`` run whose outputs still match their checksums is skipped; a corrupted
output is reported and the run recomputed (training resumes from its checkpoint, so only the outputs are
redone); a run found ``running`` whose lock is free (its process died) is resumed; a run folder made with
other settings is refused unless ``overwrite``. An exclusive ``flock`` on ``.lock`` keeps two processes
(local jobs or Ray workers sharing a file system) from running one run at once.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import functools
import hashlib
import json
import os
import platform
import shutil
import socket
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .. import __version__
from ..errors import RadfairInputError
from ..io import file_sha256, write_json
from .devices import check_device
from .kinds import KINDS, RunKind, lookup

STATUSES = ("pending", "running", "done", "failed")


class RunBusy(RuntimeError):
    """Another live process holds the run's lock."""


class RunStoreWarning(UserWarning):
    """A run store condition the user must know about (e.g. a corrupted output that is recomputed)."""


@dataclass(frozen=True)
class RunSpec:
    """What to run. Only ``kind``, ``config`` and the inputs' checksums enter the run id;
    ``cpus``, ``gpus`` and ``device`` are resources (recorded, not hashed).

    ``declaration`` is the kind's :class:`radfair.execution.kinds.RunKind` (taken from the registry when the spec
    is made, if its module is imported); it travels with the spec to worker processes. ``gpus=None`` asks the
    declaration: its GPU share on a CUDA device, none on CPU. Prefer ``RunKind.spec(...)`` to build specs.
    """

    kind: str
    config: dict
    inputs: dict[str, str] = field(default_factory=dict)
    cpus: int = 0
    gpus: float | None = None
    device: str = "cpu"
    label: str = ""
    declaration: RunKind | None = field(default=None, compare=False, repr=False)

    def __post_init__(self):
        if self.declaration is None and self.kind in KINDS:
            object.__setattr__(self, "declaration", KINDS[self.kind])
        if self.gpus is None:
            share = self.declaration.gpu_share(self.config, self.device) if self.declaration else 0.0
            object.__setattr__(self, "gpus", share)

    @functools.cached_property
    def fingerprint(self) -> dict:
        """What the run id is the hash of (input checksums read once per spec object)."""
        return {"kind": self.kind, "config": self.config,
                "inputs": {name: file_sha256(path) for name, path in sorted(self.inputs.items())}}

    @functools.cached_property
    def run_id(self) -> str:
        blob = json.dumps(self.fingerprint, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


@dataclass
class RunContext:
    run_dir: Path
    device: str
    cpus: int
    progress: bool
    log: Callable[[str], None]


@dataclass
class RunOutcome:
    run_id: str
    run_dir: str
    label: str
    status: str  # "done" (computed now), "skipped" (already done), "failed"
    seconds: float = 0.0
    error: str | None = None
    input_error: bool = False


def versions() -> dict:
    import numpy
    import torch

    out = {"radfair": __version__, "python": platform.python_version(), "torch": torch.__version__, "numpy": numpy.__version__}
    with contextlib.suppress(ImportError):
        import monai

        out["monai"] = monai.__version__
    return out


def read_record(run_dir: str | Path) -> dict | None:
    path = Path(run_dir) / "run.json"
    return json.loads(path.read_text()) if path.is_file() else None


def require_record(run_dir: str | Path, kinds) -> dict:
    """The ``run.json`` of a run of one of ``kinds``; anything else is a one-line input error."""
    wanted = " or ".join(sorted(kinds))
    record = read_record(run_dir)
    if record is None:
        raise RadfairInputError(f"{run_dir}: not a run folder (no run.json); expected a {wanted} run")
    if record.get("kind") not in kinds:
        raise RadfairInputError(f"{run_dir}: run kind {record.get('kind')!r}; expected a {wanted} run")
    return record


def corrupted_outputs(record: dict, run_dir: Path) -> list[str]:
    """Outputs of a done run that are missing or whose sha256 no longer matches."""
    bad = []
    for name, entry in record.get("outputs", {}).items():
        path = run_dir / entry["path"]
        if not path.is_file() or file_sha256(path) != entry["sha256"]:
            bad.append(name)
    return bad


def run_output(run_dir: str | Path, name: str, declaration: RunKind | None = None, config: dict | None = None) -> Path:
    """Output ``name`` of the run in ``run_dir`` (see :meth:`RunStore.output`); ``config`` (the run's settings) resolves
    the outputs of a kind whose outputs depend on them, before its record exists."""
    run_dir = Path(run_dir)
    record = read_record(run_dir)
    if record is not None:
        if name in record.get("outputs", {}):
            return run_dir / record["outputs"][name]["path"]
        if record.get("status") == "done":
            raise RadfairInputError(f"{run_dir}: the {record.get('kind')} run wrote no output {name!r}; "
                                    f"expected one of {sorted(record.get('outputs', {}))}")
        declaration = declaration or KINDS.get(record.get("kind"))
        config = config if config is not None else record.get("config")
    if declaration is None:
        raise RadfairInputError(f"{run_dir}: not a run folder of a declared kind (no run.json); cannot find output {name!r}")
    outputs = declaration.outputs_for(config)
    if name not in outputs:
        raise RadfairInputError(f"{run_dir}: run kind {declaration.name} has no output {name!r}; "
                                f"expected one of {sorted(outputs)}")
    return run_dir / outputs[name]


def _differences(old: dict, new: dict, prefix: str = "") -> list[str]:
    keys = sorted(set(old) | set(new))
    out = []
    for key in keys:
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _differences(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key} {a!r} -> {b!r}")
    return out


def _holds_results(run_dir: Path) -> bool:
    """Whether a run folder holds anything beyond its record and log (checkpoints, outputs)."""
    return any(child.name not in ("run.json", "run.log", ".lock") for child in run_dir.iterdir())


@contextlib.contextmanager
def run_lock(run_dir: Path):
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / ".lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunBusy(f"{run_dir}: another process is running this run") from None
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _logger(run_dir: Path, echo: bool) -> Callable[[str], None]:
    def log(message: str) -> None:
        with open(run_dir / "run.log", "a") as fh:
            fh.write(f"{_now()} {message}\n")
        if echo:
            from rich.console import Console

            Console(stderr=True, soft_wrap=True).print(f"  {message}", markup=False, highlight=False)

    return log


def plan(spec: RunSpec, run_dir: str | Path) -> None:
    """Record a run as ``pending`` (if its folder has no record yet), so listings show the whole grid."""
    run_dir = Path(run_dir)
    with contextlib.suppress(RunBusy), run_lock(run_dir):
        if not (run_dir / "run.json").is_file():
            write_json(run_dir / "run.json", _new_record(spec, "pending"))


def _new_record(spec: RunSpec, status: str) -> dict:
    return {"run_id": spec.run_id, "kind": spec.kind, "label": spec.label, "fingerprint": spec.fingerprint,
            "config": spec.config, "seed": spec.config.get("seed"), "status": status, "attempts": [], "outputs": {}}


def execute(spec: RunSpec, run_dir: str | Path, *, progress: bool = True, overwrite: bool = False) -> RunOutcome:
    """Run ``spec`` in ``run_dir`` unless it is already done there (see the module docstring)."""
    run_dir = Path(run_dir)
    run_id = spec.run_id
    with run_lock(run_dir):
        record = read_record(run_dir)
        if record is not None and record["run_id"] != run_id:
            if not overwrite and _holds_results(run_dir):
                diff = _differences(record.get("fingerprint", {}), spec.fingerprint)
                raise RadfairInputError(f"{run_dir}: made with other settings ({'; '.join(diff[:3]) or 'run ' + record['run_id']}); "
                                        "use a new --out or --overwrite")
            for child in run_dir.iterdir():
                if child.name != ".lock":
                    shutil.rmtree(child) if child.is_dir() else child.unlink()
            record = None
        if record is not None and record["status"] == "done":
            bad = corrupted_outputs(record, run_dir)
            if not bad:
                return RunOutcome(run_id, str(run_dir), spec.label, "skipped")
            warnings.warn(f"{run_dir}: output(s) {', '.join(bad)} missing or changed since written (sha256 mismatch); recomputing",
                          RunStoreWarning, stacklevel=2)
        record = record or _new_record(spec, "pending")
        attempt = {"started": _now(), "pid": os.getpid(), "host": socket.gethostname(), "device": spec.device,
                   "cpus": spec.cpus, "versions": versions(), "resumed": bool(record["attempts"])}
        record.update(status="running", device=spec.device, error=None)
        record["attempts"].append(attempt)
        write_json(run_dir / "run.json", record)
        log = _logger(run_dir, progress)
        _logger(run_dir, echo=False)(f"run {run_id} ({spec.kind}) attempt {len(record['attempts'])} on {attempt['host']} pid {attempt['pid']}")
        start = time.perf_counter()
        try:
            kind = spec.declaration or lookup(spec.kind)
            check_device(spec.device)  # where the run executes, not only on the driver
            with _threads(spec.cpus):
                outputs = kind.function(spec.config, RunContext(run_dir, spec.device, spec.cpus, progress, log))
            kind.check_outputs(outputs, spec.config)
        except BaseException as exc:
            record.update(status="failed", error=f"{type(exc).__name__}: {exc}")
            attempt.update(seconds=time.perf_counter() - start, status="failed")
            write_json(run_dir / "run.json", record)
            detail = "" if isinstance(exc, RadfairInputError) else "\n" + traceback.format_exc()
            _logger(run_dir, echo=False)(f"failed: {record['error']}{detail}")
            raise
        attempt.update(seconds=time.perf_counter() - start, status="done")
        record["outputs"] = {name: {"path": rel, "sha256": file_sha256(run_dir / rel)} for name, rel in outputs.items()}
        record.update(status="done", finished=_now(), seconds=sum(a.get("seconds", 0.0) for a in record["attempts"]))
        write_json(run_dir / "run.json", record)
        log(f"done in {attempt['seconds']:.1f}s")
        return RunOutcome(run_id, str(run_dir), spec.label, "done", attempt["seconds"])


@contextlib.contextmanager
def _threads(cpus: int):
    """Use exactly ``cpus`` intra-op threads (same thread count -> same floating-point sums)."""
    import torch

    if not cpus:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(cpus)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class RunStore:
    """A folder of runs named by their run ids."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def path(self, spec: RunSpec) -> Path:
        return self.root / spec.run_id

    def run_dir(self, run: RunSpec | str | Path) -> Path:
        """The folder of a run: a spec (by its run id), a run id, or a run folder."""
        if isinstance(run, RunSpec):
            return self.root / run.run_id
        path = Path(run)
        return path if path.is_absolute() or len(path.parts) > 1 else self.root / path

    def output(self, run: RunSpec | str | Path, name: str) -> Path:
        """The file of output ``name`` of a run: as recorded in its ``run.json`` once done, else where its kind's
        declaration says it will be (so later runs can name it as an input before it exists). Raises
        ``RadfairInputError`` for a name the run neither recorded nor declares."""
        if isinstance(run, RunSpec):
            return run_output(self.run_dir(run), name, run.declaration, run.config)
        return run_output(self.run_dir(run), name)

    def records(self) -> list[tuple[Path, dict]]:
        if not self.root.is_dir():
            raise RadfairInputError(f"{self.root}: folder not found (a run store)")
        found = [(p.parent, json.loads(p.read_text())) for p in sorted(self.root.glob("*/run.json"))]
        own = self.root / "run.json"
        return ([(self.root, json.loads(own.read_text()))] if own.is_file() else []) + found

    def is_live(self, run_dir: Path) -> bool:
        try:
            with run_lock(run_dir):
                return False
        except RunBusy:
            return True

    def clean(self, *, include_failed: bool = True, dry_run: bool = False) -> list[Path]:
        """Remove runs that are not done (and not running now) and stray temporary files."""
        removed = []
        for run_dir, record in self.records():
            if run_dir == self.root or record["status"] == "done" or self.is_live(run_dir):
                continue
            if record["status"] == "failed" and not include_failed:
                continue
            removed.append(run_dir)
            if not dry_run:
                shutil.rmtree(run_dir)
        return removed


def summary_row(run_dir: Path, record: dict) -> dict:
    last = record["attempts"][-1] if record.get("attempts") else {}
    return {"run_id": record["run_id"], "label": record.get("label", ""), "kind": record["kind"], "status": record["status"],
            "attempts": len(record.get("attempts", [])), "seconds": round(record.get("seconds", last.get("seconds", 0.0)), 1),
            "device": record.get("device", ""), "seed": record.get("seed"), "path": str(run_dir)}


def outcome_dict(outcome: RunOutcome) -> dict:
    return asdict(outcome)

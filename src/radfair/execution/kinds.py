"""Run kinds declare themselves next to their code; the run store knows kinds only through these declarations.

A module that defines a run function declares it with :func:`declare`::

    CLASSIFIER = declare("train-classifier", settings=ClassifierRunConfig, function=run_training,
                         outputs={"scored": "scored.parquet", ...}, gpu=lambda c: 1.0)

Importing that module registers the kind; a :class:`radfair.execution.RunSpec` made while it is registered
carries the declaration (and with it the function, by reference), so a spawned process or a Ray worker that
unpickles the spec imports the declaring module itself. Nothing in :mod:`radfair.execution` names a module of
training, mitigation or the studies.

Resources: ``cpus`` (intra-op threads, 0 = whatever the executor gives) and ``gpu``, the share of one GPU a run
of this kind asks for when its device is CUDA (1 = a whole GPU; 0.25 for small networks such as the MLP, so four
share one device); a callable ``gpu(config) -> share`` where the share depends on the settings. On CPU a run
asks for no GPU.

Outputs: ``{name: path relative to the run folder}``; a run function must return exactly these names (those in
``optional`` may be absent), which :func:`radfair.execution.store.execute` checks, and other runs read them as
``RunStore.output(run, name)``. Where the outputs depend on the settings (an ensemble run writes one ``scored-seed<k>``
per seed), ``outputs`` is a callable ``outputs(config) -> {name: path}``; :meth:`RunKind.outputs_for` resolves either.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from ..errors import RadfairInputError


@dataclass(frozen=True)
class RunKind:
    """One declared run kind (see the module docstring)."""

    name: str
    settings: type
    function: Callable
    outputs: Mapping[str, str] | Callable[[dict], Mapping[str, str]]
    optional: frozenset[str] = frozenset()
    gpu: float | Callable[[dict], float] = 1.0
    cpus: int = 0
    description: str = ""
    module: str = field(default="", compare=False)

    def __reduce__(self):
        # Pickled by reference: a worker process imports the declaring module, which declares the kind again.
        return (_declared, (self.name, self.module))

    def gpu_share(self, config: dict, device: str) -> float:
        """GPUs (a fraction of one, or 1.0) a run of ``config`` asks for on ``device``; 0.0 on CPU."""
        if not str(device).startswith("cuda"):
            return 0.0
        share = float(self.gpu(config) if callable(self.gpu) else self.gpu)
        if not 0.0 < share <= 1.0:
            raise ValueError(f"run kind {self.name}: GPU share {share!r}; expected a number in (0, 1]")
        return share

    def spec(self, config, inputs: dict[str, str] | None = None, *, device: str = "cpu", cpus: int | None = None,
             label: str = ""):
        """A :class:`radfair.execution.RunSpec` of this kind: ``config`` (a settings model or its dict) validated
        against ``settings``; resources from the declaration unless ``cpus`` is given."""
        from .store import RunSpec

        model = config if isinstance(config, self.settings) else self.settings.model_validate(config)
        config_dict = model.model_dump(mode="json")
        return RunSpec(self.name, config_dict, dict(inputs or {}), cpus=self.cpus if cpus is None else cpus,
                       gpus=self.gpu_share(config_dict, device), device=device, label=label, declaration=self)

    def outputs_for(self, config: dict | None) -> Mapping[str, str]:
        """The outputs a run of ``config`` (its settings' JSON dump) writes; ``config`` may be None for static outputs."""
        if not callable(self.outputs):
            return self.outputs
        if config is None:
            raise ValueError(f"run kind {self.name}: its outputs depend on the settings; no settings given")
        return MappingProxyType(dict(self.outputs(config)))

    def check_outputs(self, written: Mapping[str, str], config: dict | None = None) -> None:
        """A run function's returned outputs against the declaration; a mismatch is a bug of the run kind."""
        declared = self.outputs_for(config)
        missing = set(declared) - self.optional - set(written)
        undeclared = set(written) - set(declared)
        moved = {n for n in set(written) & set(declared) if str(written[n]) != declared[n]}
        if missing or undeclared or moved:
            raise RuntimeError(f"run kind {self.name}: outputs differ from its declaration (missing {sorted(missing)}, "
                               f"undeclared {sorted(undeclared)}, other paths {sorted(moved)})")


_KINDS: dict[str, RunKind] = {}
#: every declared run kind by name (read-only view; filled as declaring modules are imported)
KINDS: Mapping[str, RunKind] = MappingProxyType(_KINDS)


def declare(name: str, *, settings: type, function: Callable, outputs: Mapping[str, str] | Callable[[dict], Mapping[str, str]],
            optional=(), gpu: float | Callable[[dict], float] = 1.0, cpus: int = 0, description: str = "") -> RunKind:
    """Register a run kind (idempotent for the same function; a second, different declaration of a name is an error)."""
    kind = RunKind(name, settings, function, outputs if callable(outputs) else MappingProxyType(dict(outputs)), frozenset(optional),
                   gpu, cpus, description or (function.__doc__ or "").strip().split("\n")[0], function.__module__)
    if not callable(outputs) and set(kind.optional) - set(outputs):
        raise ValueError(f"run kind {name}: optional outputs {sorted(set(kind.optional) - set(outputs))} are not declared")
    known = _KINDS.get(name)
    if known is not None and (known.function.__module__, known.function.__qualname__) != (function.__module__, function.__qualname__):
        raise ValueError(f"run kind {name!r} is declared twice ({known.module} and {kind.module})")
    _KINDS[name] = kind
    return kind


def _declared(name: str, module: str) -> RunKind:
    importlib.import_module(module)
    return lookup(name)


def lookup(name: str) -> RunKind:
    """The declaration of ``name``; an unknown kind is a one-line input error."""
    if name not in _KINDS:
        raise RadfairInputError(f"run kind {name!r} is not declared (its module is not imported); "
                                f"expected one of {sorted(_KINDS)}")
    return _KINDS[name]


def undeclare(name: str) -> None:
    """Remove a declaration (tests' toy kinds)."""
    _KINDS.pop(name, None)


__all__ = ["KINDS", "RunKind", "declare", "lookup", "undeclare"]

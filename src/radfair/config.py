"""Typed, strict configuration models loaded from YAML (safe load).

Every config in radfair (a training run, a study) is a pydantic model that forbids unknown keys,
so a typo in a YAML file is one clear error naming the key, never a silently ignored setting.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from .errors import MISSING_FILE, RadfairInputError

Model = TypeVar("Model", bound=BaseModel)


class StrictModel(BaseModel):
    """A pydantic model that rejects unknown keys and validates on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())


def validation_message(exc: ValidationError, source: str) -> str:
    """One line naming the first offending key and what was expected."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "(top level)"
    if first["type"] == "extra_forbidden":
        return f"{source}: unknown key {where!r}; expected one of the documented settings"
    return f"{source}: {where}: {first['msg']} (got {first.get('input')!r})"


def parse_config(cls: type[Model], data: dict, source: str = "config") -> Model:
    """Validate ``data`` as ``cls``; any problem is a one-line RadfairInputError."""
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        raise RadfairInputError(validation_message(exc, source)) from None


def load_yaml_config(cls: type[Model], path: str | Path) -> Model:
    """Read a YAML file with ``yaml.safe_load`` and validate it as ``cls``."""
    path = Path(path)
    if not path.is_file():
        raise RadfairInputError(MISSING_FILE.format(path=path, what="YAML config"))
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise RadfairInputError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise RadfairInputError(f"{path}: expected a mapping of settings at the top level")
    return parse_config(cls, data, str(path))

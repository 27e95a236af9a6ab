"""One exception type for bad input, so the CLI can print one line and exit 2.

Messages are built from the constants below (tested in ``tests/test_errors.py``) so that every
error names the file, column or value at fault and what was expected.
"""

from __future__ import annotations

MISSING_FILE = "{path}: file not found ({what})"
MISSING_FOLDER = "{path}: folder not found ({what})"
MISSING_COLUMNS = "{path}: missing column(s) {columns}; expected {expected}"
BAD_VALUES = "{path}: column {column!r} has value(s) {values} ({expected})"
BAD_DTYPE = "{path}: column {column!r} has non-numeric value(s) {values}; expected numbers"
DUPLICATE_IDS = "{path}: duplicate {column} value(s) {values}; each must be unique"
PATIENT_IN_TWO_SPLITS = "{path}: patient(s) {values} appear in more than one split; splits must be patient-level"
EMPTY_AFTER_FILTER = "{path}: no rows left after {step}"
RELEASE_NOT_FOUND = "{root}: no {release} release found (looked for {marker} in this folder and below)"
BAD_OPTION = "{option}: {value!r} is not valid; expected {expected}"
UNREADABLE = "{path}: cannot be read; expected {expected} ({reason})"
UNWRITABLE = "{path}: cannot write here; expected {expected} ({reason})"
NULL_VALUES = "{path}: column {column!r} is blank in {count} row(s); every row needs one"
COERCED_TO_MISSING = "{path}: column {column!r}: {count} row(s) with unrecognised value(s) {values} treated as missing"
HEADER_ONLY = "{path}: has a header but no rows"
STALE_OUTPUT = "{path}: made with {setting}; use a new --out or --overwrite"


class RadfairInputError(ValueError):
    """Bad user input: a file, column or value that is not what radfair expects.

    The CLI prints ``error: <message>`` on one line and exits with code 2.
    """


class RadfairWarning(UserWarning):
    """A data condition the user must know about; the CLI prints it as ``warning: <message>``."""


def preview(values, limit: int = 5) -> str:
    """Render up to ``limit`` distinct offending values for an error message."""
    seen = []
    for value in values:
        if value not in seen:
            seen.append(value)
        if len(seen) > limit:
            break
    shown = ", ".join(repr(v) for v in seen[:limit])
    return f"[{shown}{', ...' if len(seen) > limit else ''}]"

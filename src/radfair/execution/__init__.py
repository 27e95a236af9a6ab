"""radfair.execution: the run store (content-addressed, resumable runs), declared run kinds, devices, and the local
and Ray executors."""

from .executors import EXECUTORS, run_grid
from .kinds import KINDS, RunKind, declare, lookup
from .store import (
           RunBusy,
           RunContext,
           RunOutcome,
           RunSpec,
           RunStore,
           RunStoreWarning,
           execute,
           read_record,
           run_output,
)

__all__ = ["EXECUTORS", "KINDS", "RunBusy", "RunContext", "RunKind", "RunOutcome", "RunSpec", "RunStore", "RunStoreWarning",
           "declare", "execute", "lookup", "read_record", "run_grid", "run_output"]

"""radfair.execution: the run store (content-addressed, resumable runs) and the local and Ray executors."""

from .executors import EXECUTORS, run_grid
from .store import (
           RUN_KINDS,
           RunBusy,
           RunContext,
           RunOutcome,
           RunSpec,
           RunStore,
           RunStoreWarning,
           execute,
           read_record,
)

__all__ = ["EXECUTORS", "RUN_KINDS", "RunBusy", "RunContext", "RunOutcome", "RunSpec", "RunStore", "RunStoreWarning",
           "execute", "read_record", "run_grid"]

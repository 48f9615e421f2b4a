"""Where the order sync keeps its cursor between pages, runs and crashes.

A checkpoint is a small JSON document (see ``selling_partner.sync`` for its fields) saved after every
committed page. :class:`VariableCheckpointStore` keeps it in an Airflow Variable, so a data engineer can
read it in *Admin -> Variables* and delete it to start over; :class:`MemoryCheckpointStore` keeps it in a
dict for unit tests and benchmarks.

Notes on Airflow Variables (Airflow 3):

* ``Variable.set``/``delete`` work only inside a running task (they go through the Task SDK).
* An ``AIRFLOW_VAR_<KEY>`` environment variable or a secrets backend shadows reads of the same key:
  never define a checkpoint key there, or the sync would never see its own progress.
"""

from __future__ import annotations

import copy
import json
from typing import Any, Protocol, runtime_checkable

#: Shown in the Variables view next to every checkpoint.
CHECKPOINT_DESCRIPTION = (
    "SP-API order sync checkpoint (written by SpApiOrdersSyncOperator after every committed page). "
    "Delete it, or trigger the DAG with reset_checkpoint=true, to start this mode over; the warehouse "
    "upserts are idempotent, so a restart only re-reads orders."
)


@runtime_checkable
class CheckpointStore(Protocol):
    """Load, save and delete one JSON checkpoint by key."""

    def load(self, key: str) -> dict[str, Any] | None:
        """Return the saved checkpoint, or ``None`` when there is none."""
        ...

    def save(self, key: str, value: dict[str, Any]) -> None:
        """Replace the checkpoint under ``key``."""
        ...

    def delete(self, key: str) -> None:
        """Remove the checkpoint (no error when it does not exist)."""
        ...


def dumps_checkpoint(value: dict[str, Any]) -> str:
    """Serialise a checkpoint as indented, key-sorted JSON (readable in the Variables view)."""
    return json.dumps(value, indent=2, sort_keys=True, default=str)


def loads_checkpoint(raw: str | dict[str, Any] | None) -> dict[str, Any] | None:
    """Parse a stored checkpoint; ``None``/empty means no checkpoint."""
    if raw is None or raw == "":
        return None
    if isinstance(raw, dict):
        return raw
    value = json.loads(raw)
    if not isinstance(value, dict):
        raise ValueError(f"checkpoint is not a JSON object: {type(value).__name__}")
    return value


class VariableCheckpointStore:
    """Checkpoints in Airflow Variables (``airflow.sdk.Variable``); use from inside a running task."""

    def __init__(self, description: str = CHECKPOINT_DESCRIPTION) -> None:
        self.description = description

    def load(self, key: str) -> dict[str, Any] | None:
        from airflow.sdk import Variable

        return loads_checkpoint(Variable.get(key, default=None))

    def save(self, key: str, value: dict[str, Any]) -> None:
        from airflow.sdk import Variable

        Variable.set(key, dumps_checkpoint(value), description=self.description)

    def delete(self, key: str) -> None:
        from airflow.sdk import Variable

        if Variable.get(key, default=None) is not None:
            Variable.delete(key)


class MemoryCheckpointStore:
    """Checkpoints in a dict (tests, benchmarks). Values are copied through JSON like the real store."""

    def __init__(self) -> None:
        self.data: dict[str, str] = {}
        self.saves = 0

    def load(self, key: str) -> dict[str, Any] | None:
        return loads_checkpoint(self.data.get(key))

    def save(self, key: str, value: dict[str, Any]) -> None:
        self.data[key] = dumps_checkpoint(copy.deepcopy(value))
        self.saves += 1

    def delete(self, key: str) -> None:
        self.data.pop(key, None)

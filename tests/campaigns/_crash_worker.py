"""Run one DAG once with ``dag.test()`` in its own process and SIGKILL it at a crash point (test_crash.py).

``python -m tests.campaigns._crash_worker SPEC_JSON``, or ``... --warm``: a worker started ahead
of its test, which imports Airflow, builds the in-process execution API and sends it a first request
(the ~10 s every ``dag.test()`` process pays before its first task), then reads one line from stdin,
``{"env": {...}, "spec": {...}}``: the test's environment (its connections point at this test's
sandbox) and the spec. The spec (JSON object):

* ``dag_id``: the DAG to run (parsed from its file in dags/), ``conf``: its run conf (optional);
* ``point``: where to die - ``commit:<Warehouse method>`` (the warehouse transaction commit inside that
  method: ``upsert_orders`` is the sync page, ``apply_notifications`` the land batch,
  ``finish_enrichment`` the enrichment batch), ``checkpoint_save`` (the sync's checkpoint Variable
  write, ``VariableCheckpointStore.save``) or ``sqs:<Operation>`` (a boto3 SQS call, e.g.
  ``sqs:DeleteMessageBatch``, the ack's batch delete);
* ``n``: on the n-th such call (1-based); ``when``: ``before`` or ``after`` the original call;
* ``lease_seconds``: the enrichment claims' lease (optional; the DAG reads it from the environment too).

At the point the process does ``os.kill(os.getpid(), SIGKILL)``: no ``finally``, no rollback, no task
state written. If the run ends without reaching the point the worker exits with status 3 (the test
fails: the crash point was never hit).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from tests.fixtures.airflow import DAGS

#: Exit status when the run finished without reaching its crash point.
NOT_REACHED = 3


def _die() -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)


class CrashPoint:
    """Counts the calls of one point; the n-th one dies ``before`` or ``after`` the original."""

    def __init__(self, n: int, when: str) -> None:
        if when not in ("before", "after"):
            raise ValueError(f"when must be before or after, got {when!r}")
        self.n, self.when, self.calls = n, when, 0

    def around(self, original: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        hit = self.calls == self.n
        print(f"crash point call {self.calls} (dies at {self.n}, {self.when})", flush=True)
        if hit and self.when == "before":
            _die()
        result = original(*args, **kwargs)
        if hit and self.when == "after":
            _die()
        return result


def _install_commit_point(method: str, crash: CrashPoint) -> None:
    """Die at the commit of the warehouse transaction run inside ``Warehouse.<method>``.

    Every warehouse write goes through ``Warehouse._transaction``, which commits the connection that
    the backend's ``_connect`` returned: that connection is wrapped so its ``commit`` is the crash point
    while (and only while) ``method`` runs.
    """
    from selling_partner.warehouse.base import Warehouse
    from selling_partner.warehouse.postgres import PostgresWarehouse

    inside = threading.local()
    original_method = getattr(Warehouse, method)
    original_connect = PostgresWarehouse._connect

    def wrapped_method(self: Any, *args: Any, **kwargs: Any) -> Any:
        inside.active = True
        try:
            return original_method(self, *args, **kwargs)
        finally:
            inside.active = False

    class Connection:
        def __init__(self, conn: Any) -> None:
            object.__setattr__(self, "_conn", conn)

        def commit(self) -> None:
            if getattr(inside, "active", False):
                crash.around(self._conn.commit)
            else:
                self._conn.commit()

        def __getattr__(self, name: str) -> Any:
            return getattr(self._conn, name)

        def __setattr__(self, name: str, value: Any) -> None:
            setattr(self._conn, name, value)

    def connect(self: Any) -> Any:
        return Connection(original_connect(self))

    setattr(Warehouse, method, wrapped_method)
    PostgresWarehouse._connect = connect  # type: ignore[method-assign]


def _install_checkpoint_point(crash: CrashPoint) -> None:
    from selling_partner.checkpoint import VariableCheckpointStore

    original = VariableCheckpointStore.save

    def save(self: Any, key: str, value: dict[str, Any]) -> None:
        crash.around(original, self, key, value)

    VariableCheckpointStore.save = save  # type: ignore[method-assign]


def _install_sqs_point(operation: str, crash: CrashPoint) -> None:
    from botocore.client import BaseClient

    original = BaseClient._make_api_call

    def call(self: Any, operation_name: str, api_params: Any) -> Any:
        if operation_name == operation:
            return crash.around(original, self, operation_name, api_params)
        return original(self, operation_name, api_params)

    BaseClient._make_api_call = call  # type: ignore[method-assign]


def install(point: str, crash: CrashPoint) -> None:
    kind, _, name = point.partition(":")
    if kind == "commit":
        _install_commit_point(name, crash)
    elif kind == "checkpoint_save":
        _install_checkpoint_point(crash)
    elif kind == "sqs":
        _install_sqs_point(name, crash)
    else:
        raise ValueError(f"unknown crash point {point!r}")


def main(spec: dict[str, Any]) -> None:
    from airflow.dag_processing.dagbag import DagBag

    dag_id = spec["dag_id"]
    bag = DagBag(dag_folder=str(DAGS / f"{dag_id}.py"))  # this DAG's file only: a quicker start
    assert bag.import_errors == {}, bag.import_errors
    dag = bag.dags[dag_id]
    for task in dag.tasks:
        task.retries = 0
        if spec.get("lease_seconds") is not None and hasattr(task, "lease_seconds"):
            task.lease_seconds = float(spec["lease_seconds"])
    install(spec["point"], CrashPoint(int(spec["n"]), spec["when"]))
    dr = dag.test(run_conf=spec.get("conf"))
    print(f"run ended {getattr(dr, 'state', None)} without reaching the crash point", flush=True)
    sys.exit(NOT_REACHED)


def warm_then_run() -> None:
    """Pay the process's fixed start-up cost first, then run what arrives on stdin."""
    import selling_partner.operators.enrich
    import selling_partner.operators.events
    import selling_partner.operators.orders_sync
    import selling_partner.warehouse.postgres  # noqa: F401
    from airflow.dag_processing.dagbag import DagBag  # noqa: F401 - the import is the warm-up
    from airflow.sdk.execution_time.supervisor import InProcessTestSupervisor

    # The in-process execution API's app and its first request (~5 s of lazy set-up): a start of a task
    # instance that does not exist answers 404 and leaves everything warm.
    client = InProcessTestSupervisor._api_client(None)
    try:
        client.task_instances.start(uuid.uuid4(), os.getpid(), datetime.now(UTC))
    except Exception as exc:  # the expected 404
        print(f"warm-up request answered {type(exc).__name__} (expected)", flush=True)
    line = sys.stdin.readline()
    if not line.strip():
        sys.exit(0)  # not needed: the test module ended
    job = json.loads(line)
    os.environ.clear()
    os.environ.update(job["env"])
    main(job["spec"])


if __name__ == "__main__":
    if sys.argv[1] == "--warm":
        warm_then_run()
    else:
        main(json.loads(sys.argv[1]))

"""Run ``sp_api_order_enrich`` once with ``dag.test()`` in its own process (test_reruns.py kills it).

``python -m tests.events._enrich_worker LEASE_SECONDS``: the DAG as parsed from dags/, its enrichment
claims leased for ``LEASE_SECONDS`` (the operator's ``lease_seconds``; 10 minutes in the DAG) so the
test's rerun can take over a killed run's claims without waiting that long.
"""

from __future__ import annotations

import sys

from tests.fixtures.airflow import DAGS

DAG_ID = "sp_api_order_enrich"


def main(lease_seconds: float) -> None:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS / f"{DAG_ID}.py"))  # this DAG's file only: a quicker start
    assert bag.import_errors == {}, bag.import_errors
    dag = bag.dags[DAG_ID]
    for task in dag.tasks:
        if hasattr(task, "lease_seconds"):
            task.lease_seconds = lease_seconds
        task.retries = 0
    dag.test()


if __name__ == "__main__":
    main(float(sys.argv[1]))

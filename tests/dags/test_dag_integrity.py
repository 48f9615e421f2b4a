"""The DAG files parse with a real DagBag and carry the promised wiring and docs."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.fixtures.airflow import DAGS, load_dag

pytestmark = pytest.mark.integration


def test_dags_folder_imports_without_errors(airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS))
    assert bag.import_errors == {}
    assert "sp_api_orders_sync" in bag.dags


def test_sync_dag_wiring(airflow_db):
    dag = load_dag("sp_api_orders_sync")
    assert dag.max_active_runs == 1
    assert dag.catchup is False
    assert "Reruns are safe" in dag.doc_md and "backfill" in dag.doc_md
    params = dag.params
    for name in (
        "mode",
        "start_date",
        "end_date",
        "marketplace_ids",
        "window_days",
        "reset_checkpoint",
        "sp_api_conn_ids",
        "warehouse_conn_id",
    ):
        assert params.get_param(name).description, name
    assert params["mode"] == "sweep"
    assert [t.task_id for t in dag.tasks] == ["sync_orders__sp_api_default"]
    task = dag.tasks[0]
    assert task.doc_md and "rerun" in task.doc_md.lower()
    assert [o.uri for o in task.outlets] == ["sp_api://warehouse/sp_orders"]
    assert task.retries >= 1
    assert dag.schedule == timedelta(minutes=15)


def test_one_task_per_configured_connection(airflow_db, monkeypatch):
    monkeypatch.setenv("SP_API_SYNC_CONN_IDS", "seller_a, seller_b")
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS / "sp_api_orders_sync.py"))
    assert bag.import_errors == {}
    dag = bag.dags["sp_api_orders_sync"]
    assert sorted(t.task_id for t in dag.tasks) == ["sync_orders__seller_a", "sync_orders__seller_b"]
    assert dag.params["sp_api_conn_ids"] == ["seller_a", "seller_b"]


def test_mode_param_rejects_unknown_values(airflow_db):
    from airflow.sdk import Param

    dag = load_dag("sp_api_orders_sync")
    mode: Param = dag.params.get_param("mode")
    with pytest.raises(Exception, match="not one of"):
        mode.resolve("everything")

"""sp_api_notifications_setup against the sandbox's Notifications API and a moto SQS queue (dag.test)."""

from __future__ import annotations

import json

import pytest
from selling_partner.notifications import setup as plan

from tests.fixtures.airflow import delete_variables, get_variable, load_dag, run_dag, xcom_result

pytestmark = pytest.mark.integration
DAG_ID = "sp_api_notifications_setup"
TASK = "setup_notifications__sp_api_default"
NOTIFICATION_CALLS = (
    "createDestination",
    "createSubscription",
    "deleteSubscriptionById",
    "deleteDestination",
)


def _policy(queue_arn: str) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [plan.statement_to_add(queue_arn)]})


@pytest.fixture
def setup_env(airflow_db, sandbox_factory, moto_sqs, monkeypatch):
    """A sandbox seller, a moto queue (policy not set yet) and the connections the setup DAG uses."""
    delete_variables("sp_api_notifications__")

    def start(region: str = "na"):
        sb = sandbox_factory(orders=5, days=2, time_scale=600, region=region)
        queue_url = moto_sqs.queue_url()
        monkeypatch.setenv("AIRFLOW_CONN_SP_API_DEFAULT", sb.connection_uri())
        monkeypatch.setenv("AIRFLOW_VAR_SP_API_EVENTS_QUEUE_URL", queue_url)
        monkeypatch.setenv(
            "AIRFLOW_CONN_AWS_SP_API_EVENTS",
            json.dumps({"conn_type": "aws", "login": "testing", "password": "testing",
                        "extra": {"endpoint_url": moto_sqs.endpoint, "region_name": "us-east-1"}}),
        )  # fmt: skip
        return sb, queue_url, moto_sqs.queue_arn(queue_url)

    yield start
    delete_variables("sp_api_notifications__")


def _calls(sb) -> dict[str, int]:
    ops = sb.stats()["operations"]
    return {op: ops.get(op, {}).get("calls", 0) for op in NOTIFICATION_CALLS}


def _run(conf: dict | None = None, expect: str = "success"):
    return run_dag(load_dag(DAG_ID), run_conf=conf or {}, expect=expect)


def test_setup_twice_changes_nothing_the_second_time_and_teardown_removes_it(setup_env, moto_sqs):
    sb, queue_url, queue_arn = setup_env()
    moto_sqs.client().set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": _policy(queue_arn)})
    conf = {
        "orderChangeTypes": ["OrderStatusChange", "BuyerRequestedChange"],
        "marketplace_ids": sb.marketplace_ids[:1],
    }
    first = xcom_result(_run(conf), TASK)
    assert len(first["changed"]) == 3 and first["queue_arn"] == queue_arn
    assert _calls(sb) == {
        "createDestination": 1,
        "createSubscription": 2,
        "deleteSubscriptionById": 0,
        "deleteDestination": 0,
    }
    record = json.loads(get_variable("sp_api_notifications__sp_api_default"))
    assert record == {"destination_id": first["destination_id"], "subscriptions": first["subscriptions"]}
    second = xcom_result(_run(conf), TASK)
    assert second["changed"] == [] and second["subscriptions"] == first["subscriptions"]
    assert (
        _calls(sb)["createDestination"] == 1 and _calls(sb)["createSubscription"] == 2
    )  # nothing created again
    # a different event filter is reported, not silently replaced
    _run({**conf, "orderChangeTypes": ["DeliveryTipChange"]}, expect="failed")
    assert _calls(sb)["createSubscription"] == 2
    removed = xcom_result(_run({"mode": "teardown"}), TASK)
    assert len(removed["removed"]) == 3
    assert _calls(sb) == {
        "createDestination": 1,
        "createSubscription": 2,
        "deleteSubscriptionById": 2,
        "deleteDestination": 1,
    }
    assert get_variable("sp_api_notifications__sp_api_default") is None
    assert xcom_result(_run({"mode": "teardown"}), TASK)["removed"] == []  # nothing it created is left


@pytest.mark.parametrize("problem", ["no policy", "wrong region"])
def test_a_queue_amazon_cannot_send_to_is_refused_before_calling_amazon(setup_env, moto_sqs, problem):
    # the eu seller's queue would have to be in eu-west-1; moto's is in us-east-1
    sb, queue_url, queue_arn = setup_env(region="eu" if problem == "wrong region" else "na")
    if problem == "wrong region":
        moto_sqs.client().set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": _policy(queue_arn)})
    _run(expect="failed")
    assert _calls(sb) == dict.fromkeys(NOTIFICATION_CALLS, 0)
    assert sb.stats()["operations"].get("getDestinations", {}).get("calls", 0) == 0
    from selling_partner.operators.notifications_setup import (
        NotificationSetupError,
        SpApiNotificationsSetupOperator,
    )

    op = SpApiNotificationsSetupOperator(task_id="t", sqs_queue=queue_url)
    with pytest.raises(NotificationSetupError) as refused:
        op.check()
    fix = (
        '"Sid": "AllowAmazonSellingPartnerNotifications"'
        if problem == "no policy"
        else "need it in eu-west-1"
    )
    assert fix in str(refused.value) and "nothing was changed at Amazon" in str(refused.value)


def test_queue_checks_say_what_is_wrong_and_how_to_fix_it():
    arn = "arn:aws:sqs:us-east-1:123456789012:orders"
    assert plan.region_problem(arn, "na") is None
    assert "need it in eu-west-1" in plan.region_problem(arn, "eu")
    with pytest.raises(ValueError, match="FIFO"):
        plan.QueueArn.parse("arn:aws:sqs:us-east-1:1:orders.fifo")
    with pytest.raises(ValueError, match="not an SQS queue ARN"):
        plan.QueueArn.parse("arn:aws:sns:us-east-1:1:topic")
    assert plan.policy_allows_amazon(None, arn) == list(plan.REQUIRED_ACTIONS)
    assert plan.policy_allows_amazon(json.dumps({"Statement": [plan.statement_to_add(arn)]}), arn) == []
    only_send = {
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": [plan.AMAZON_PRINCIPAL]},
                "Action": "sqs:SendMessage",
                "Resource": arn,
            }
        ]
    }
    assert plan.policy_allows_amazon(only_send, arn) == ["sqs:GetQueueAttributes"]
    other_queue = {"Statement": [{**plan.statement_to_add(arn), "Resource": arn + "-other"}]}
    assert plan.policy_allows_amazon(other_queue, arn) == list(plan.REQUIRED_ACTIONS)
    denied = {"Statement": [{**plan.statement_to_add(arn), "Effect": "Deny"}]}
    assert plan.policy_allows_amazon(denied, arn) == list(plan.REQUIRED_ACTIONS)
    everyone = {"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "sqs:*", "Resource": "*"}]}
    assert plan.policy_allows_amazon(everyone, arn) == []
    with pytest.raises(ValueError, match="unknown orderChangeTypes"):
        plan.order_change_filter(None, ["StatusChange"])
    f = plan.order_change_filter(["B1", "A1"], ["OrderStatusChange"])
    assert f == {
        "eventFilterType": "ORDER_CHANGE",
        "marketplaceIds": ["A1", "B1"],
        "orderChangeTypes": ["OrderStatusChange"],
    }
    sub = {"subscriptionId": "s", "destinationId": "d", "processingDirective": {"eventFilter": f}}
    assert plan.subscription_action(sub, destination_id="d", event_filter=dict(f))[0] == "exists"
    assert plan.subscription_action(sub, destination_id="x", event_filter=f)[0] == "mismatch"
    assert plan.subscription_action(None, destination_id="d", event_filter=f)[0] == "create"

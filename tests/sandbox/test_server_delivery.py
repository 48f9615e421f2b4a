"""POST /_sandbox/advance: the world moves on and well-formed notifications land in (moto) SQS."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sp_api_sandbox.launcher import SandboxProcess

from tests.contract import decode_body, notification_errors, validate_notification

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def wired(moto_sqs, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SandboxProcess, str]]:
    """One sandbox publishing into one queue for the module; each test drains the queue it reads."""
    queue_url = moto_sqs.queue_url()
    options = {"seed": 21, "orders": 60, "days": 10, "time_scale": 600}
    log = tmp_path_factory.mktemp("delivery") / "sandbox.log"
    with SandboxProcess(
        options={**options, "sqs_endpoint": moto_sqs.endpoint, "queue_url": queue_url}, log_path=log
    ) as sb:
        yield sb, queue_url


def _order_change(body: dict) -> dict:
    return body["Payload"]["OrderChangeNotification"]


def test_advance_publishes_one_valid_message_per_change(wired, moto_sqs) -> None:
    sb, queue_url = wired
    moto_sqs.receive_all(queue_url)  # start from an empty queue
    start_count = sb.health()["orders"]
    before = datetime.now(UTC)
    result = sb.advance(new_orders=4, changes=15)
    received = [m["Body"] for m in moto_sqs.receive_all(queue_url)]
    assert result["published"] == result["messages"] == len(received) == len(result["changes"]) >= 4
    bodies = [validate_notification(raw) for raw in received]
    assert all(isinstance(json.loads(raw), dict) for raw in received)  # not double-encoded by default
    by_id = {b["NotificationMetadata"]["NotificationId"]: b for b in bodies}
    assert len(by_id) == len(bodies)
    truth = {o["orderId"]: o for o in sb.truth()["orders"]}
    assert len(truth) == start_count + 4
    for change in result["changes"]:
        body = by_id[change["notification_id"]]
        if body["NotificationType"] != "ORDER_CHANGE":
            assert (
                body["Payload"]["FBAOutboundShipmentStatusNotification"]["AmazonOrderId"]
                == change["order_id"]
            )
            continue
        oc = _order_change(body)
        assert oc["SellerId"] == sb.seller_id and oc["AmazonOrderId"] == change["order_id"]
        stamped = datetime.fromisoformat(oc["OrderChangeTrigger"]["TimeOfOrderChange"])
        assert before - timedelta(seconds=1) <= stamped and stamped <= datetime.now(UTC)
        # each order changes at most once per advance, so its truth is stamped with this change's time
        assert datetime.fromisoformat(truth[change["order_id"]]["lastUpdatedTime"]) == stamped
    created = [c for c in result["changes"] if c["change"] == "created"]
    assert len(created) == 4


def test_duplicates_and_double_encoding(wired, moto_sqs) -> None:
    sb, queue_url = wired
    moto_sqs.receive_all(queue_url)  # start from an empty queue
    result = sb.advance(new_orders=3, changes=10, duplicates=1.0, double_encoded=1.0)
    received = [m["Body"] for m in moto_sqs.receive_all(queue_url)]
    assert result["published"] == len(received) == 2 * result["messages"]
    assert all(isinstance(json.loads(raw), str) for raw in received)  # a JSON string holding the JSON
    ids = [validate_notification(raw)["NotificationMetadata"]["NotificationId"] for raw in received]
    assert len(set(ids)) == result["messages"] and all(ids.count(i) == 2 for i in ids)


def test_poison_and_foreign_seller_messages(wired, moto_sqs) -> None:
    sb, queue_url = wired
    moto_sqs.receive_all(queue_url)  # start from an empty queue
    result = sb.advance(new_orders=2, changes=5, poison=12, foreign_seller=3)
    received = [m["Body"] for m in moto_sqs.receive_all(queue_url)]
    assert result["published"] == len(received)
    invalid = [raw for raw in received if notification_errors(raw)]
    valid = [decode_body(raw) for raw in received if not notification_errors(raw)]
    assert len(valid) == result["messages"] + 3
    assert len(invalid) == result["published"] - len(valid) >= 11  # an empty body cannot travel through SQS
    foreign = [b for b in valid if next(iter(b["Payload"].values()))["SellerId"] != sb.seller_id]
    assert len(foreign) == 3


def test_shuffle_changes_the_delivery_order(wired, moto_sqs) -> None:
    sb, queue_url = wired
    moto_sqs.receive_all(queue_url)  # start from an empty queue

    def delivered() -> list[str]:
        return [
            decode_body(m["Body"])["NotificationMetadata"]["NotificationId"]
            for m in moto_sqs.receive_all(queue_url)
        ]

    def reported(result: dict) -> list[str]:  # the changes in (time, order id) order
        return [c["notification_id"] for c in result["changes"]]

    plain = sb.advance(new_orders=10, changes=30)
    assert delivered() == reported(plain)
    # new orders only: an order that changed within this second cannot change again before the next
    shuffled = sb.advance(new_orders=30, changes=0, shuffle=True)
    received = delivered()
    assert sorted(received) == sorted(reported(shuffled)) and len(received) >= 30
    assert received != reported(shuffled)


def test_advance_steps_and_validation(wired, moto_sqs) -> None:
    sb, queue_url = wired
    moto_sqs.receive_all(queue_url)  # start from an empty queue
    start_count = sb.health()["orders"]
    result = sb.advance(steps=3, new_orders=2, changes=0)
    assert len([c for c in result["changes"] if c["change"] == "created"]) == 6
    assert sb.health()["orders"] == start_count + 6
    assert len(moto_sqs.receive_all(queue_url)) == result["published"]
    with pytest.raises(Exception, match="400"):
        sb.advance(duplicates=2.0)


def test_advance_without_sqs_moves_the_world_only(sandbox_factory) -> None:
    sb = sandbox_factory(orders=10, time_scale=600)
    result = sb.advance(new_orders=2, changes=3)
    assert result["published"] == 0 and result["messages"] >= 2
    assert sb.health()["orders"] == 12

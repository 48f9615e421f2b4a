"""Delivery of notifications into SQS the way Amazon delivers them: raw JSON bodies, at least once.

Delivery options reproduce what consumers must survive: duplicate deliveries, shuffled order,
double-encoded bodies (the body is a JSON string holding the JSON), poison messages, messages
for another seller, and notifications that never arrive (``drop``: the broken pipe the sweep must
catch).
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

SQS_BATCH = 10


@dataclass(frozen=True)
class DeliveryOptions:
    duplicates: float = 0.0
    shuffle: bool = False
    double_encoded: float = 0.0
    poison: int = 0
    foreign_seller: int = 0
    drop: float = 0.0

    def __post_init__(self) -> None:
        for name in ("duplicates", "double_encoded", "drop"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a fraction within [0, 1]")
        for name in ("poison", "foreign_seller"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")


def split_dropped(
    messages: Sequence[dict[str, Any]], drop: float, rng: random.Random
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(delivered, dropped)``: each message is lost with probability ``drop`` (pure; seeded)."""
    delivered: list[dict[str, Any]] = []
    dropped: list[dict[str, Any]] = []
    for message in messages:
        (dropped if drop and rng.random() < drop else delivered).append(message)
    return delivered, dropped


def build_bodies(
    messages: Sequence[dict[str, Any]],
    options: DeliveryOptions,
    rng: random.Random,
    poison: Sequence[str] = (),
    foreign: Sequence[dict[str, Any]] = (),
) -> list[str]:
    """The SQS bodies to send for ``messages`` under ``options`` (pure; seeded by ``rng``)."""
    bodies: list[str] = []
    for message in [*messages, *foreign]:
        copies = 2 if rng.random() < options.duplicates else 1
        for _ in range(copies):
            body = json.dumps(message, separators=(",", ":"))
            if rng.random() < options.double_encoded:
                body = json.dumps(body)
            bodies.append(body)
    bodies.extend(poison)
    if options.shuffle:
        rng.shuffle(bodies)
    return bodies


class SqsPublisher:
    """Sends bodies to one queue with ``send_message_batch`` (boto3 against a moto endpoint)."""

    def __init__(self, endpoint_url: str, queue_url: str, region: str = "us-east-1") -> None:
        import boto3  # imported lazily: the sandbox runs without SQS too

        self.queue_url = queue_url
        self._client = boto3.client(
            "sqs",
            endpoint_url=endpoint_url,
            region_name=region,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def send(self, bodies: Sequence[str]) -> int:
        """Send every body; returns how many SQS accepted (raises if any batch entry failed)."""
        sent = 0
        for start in range(0, len(bodies), SQS_BATCH):
            chunk = bodies[start : start + SQS_BATCH]
            entries = [{"Id": str(i), "MessageBody": body} for i, body in enumerate(chunk)]
            response = self._client.send_message_batch(QueueUrl=self.queue_url, Entries=entries)
            failed = response.get("Failed") or []
            if failed:
                raise RuntimeError(
                    f"SQS rejected {len(failed)} of {len(chunk)} messages: {failed[0].get('Message')}"
                )
            sent += len(response.get("Successful") or [])
        return sent

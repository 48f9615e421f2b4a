"""The one place that decides what a task does about a rate-limit wait: go, wait here, defer, or stop.

Pure: operators ask :func:`decide` with the wait the limiter reports and act on the answer.

* A wait of zero: **go**.
* A wait the run's time budget cannot afford (once the run has committed something): **stop** cleanly
  and let the next run continue from the checkpoint.
* A wait up to ``defer_after`` seconds, or shorter than ``min_deferral``: **wait** here, holding the
  worker slot. Short deferrals are not worth it, and one that ends before the previous task process has
  exited makes Airflow put the task up for retry (an upstream race on 3.3), so Airflow never sees one.
* Anything longer: **defer** for the wait (no worker slot held while the bucket refills).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Action = Literal["go", "wait", "defer", "stop"]

#: Shortest deferral; shorter waits are waited out in the worker.
DEFAULT_MIN_DEFERRAL = 10.0
#: Waits up to this are waited out in the worker; longer ones defer.
DEFAULT_DEFER_AFTER = 30.0


@dataclass(frozen=True)
class Pace:
    """What to do about a wait: ``action`` for ``seconds``, and why (for the log)."""

    action: Action
    seconds: float
    reason: str


def inline_limit(defer_after: float, min_deferral: float) -> float:
    """The longest wait a task waits out in the worker (what the hook's ``max_wait`` must be)."""
    return max(defer_after, min_deferral)


def decide(
    wait: float,
    *,
    defer_after: float,
    min_deferral: float,
    budget_left: float | None = None,
    committed: bool = True,
) -> Pace:
    """Decide about a wait of ``wait`` seconds for the next rate-limit token.

    :param defer_after: waits up to this are waited out in the worker
    :param min_deferral: the shortest deferral; shorter waits are waited out too
    :param budget_left: seconds left of the run's time budget (``None``: no budget)
    :param committed: the run has committed at least one page (a run that has not is never stopped by
        its budget, so every run makes progress)
    """
    if wait <= 0:
        return Pace("go", 0.0, "a token is available")
    if budget_left is not None and committed and wait >= budget_left:
        return Pace(
            "stop", 0.0, f"the time budget ({budget_left:.0f} s left) would be spent waiting {wait:.0f} s"
        )
    if wait <= inline_limit(defer_after, min_deferral):
        return Pace("wait", wait, f"{wait:.1f} s is short enough to wait out in the worker")
    return Pace("defer", wait, f"next token in {wait:.0f} s; deferring (no worker slot held)")

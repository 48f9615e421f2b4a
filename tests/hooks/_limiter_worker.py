"""Worker run in separate OS processes (multiprocessing spawn) by test_shared_limiter.py."""

from __future__ import annotations

import os
import time


def warm_up() -> None:
    """Pool initializer: import the hook (and Airflow) once per worker process, before the timed part."""
    from selling_partner.hooks.orders import SellingPartnerOrdersHook  # noqa: F401


def pid(_: object) -> int:
    """The worker's process id (used to wait until every worker is initialised)."""
    return os.getpid()


def call_get_order(conn_json: str, order_ids: list[str], start_at: float) -> list[tuple[float, int]]:
    """Call getOrder for each id through a SellingPartnerOrdersHook; return (send time, HTTP status) pairs."""
    os.environ["AIRFLOW_CONN_SP_SHARED"] = conn_json
    from selling_partner.hooks.errors import SpApiThrottled
    from selling_partner.hooks.orders import SellingPartnerOrdersHook

    hook = SellingPartnerOrdersHook("sp_shared", max_wait=120, max_attempts=1)
    hook.config  # noqa: B018 - read the connection before the start line
    hook.lwa.access_token()
    while time.time() < start_at:
        time.sleep(0.005)
    out: list[tuple[float, int]] = []
    for order_id in order_ids:
        try:
            hook.get_order(order_id, included_data=[])
            out.append((time.time(), 200))
        except SpApiThrottled:
            out.append((time.time(), 429))
    hook.close()
    return out

"""SP-API hooks: the base ``SellingPartnerHook`` (connection, auth, rate limits, retries, paging; module
``sp_api``) and the API surfaces beside it, ``SellingPartnerOrdersHook`` (``orders``) and
``SellingPartnerNotificationsHook`` (``notifications``), plus errors, the rate limiter and auth.

The base module is not called ``selling_partner.py``: Airflow's plugin loader imports files under
plugins/ by their stem, and that name would shadow the ``selling_partner`` package.

The hooks are imported lazily so ``selling_partner.hooks.errors`` stays cheap to import (DAG parsing).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from selling_partner.hooks.notifications import SellingPartnerNotificationsHook
    from selling_partner.hooks.orders import OrderPage, SearchPage, SellingPartnerOrdersHook
    from selling_partner.hooks.sp_api import SellingPartnerHook

_WHERE = {
    "SellingPartnerHook": "sp_api",
    "SellingPartnerOrdersHook": "orders",
    "OrderPage": "orders",
    "SearchPage": "orders",
    "SellingPartnerNotificationsHook": "notifications",
}
__all__ = [
    "OrderPage",
    "SearchPage",
    "SellingPartnerHook",
    "SellingPartnerNotificationsHook",
    "SellingPartnerOrdersHook",
]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"selling_partner.hooks.{_WHERE[name]}"), name)
    raise AttributeError(name)

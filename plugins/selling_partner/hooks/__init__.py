"""SP-API hook package: ``SellingPartnerHook`` (module ``sp_api``) plus errors, rate limiter and auth.

The module is not called ``selling_partner.py``: Airflow's plugin loader imports every file under
plugins/ by its stem, and that name would shadow the ``selling_partner`` package.

``SellingPartnerHook`` is imported lazily so ``selling_partner.hooks.errors`` stays cheap to import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from selling_partner.hooks.sp_api import OrderPage, SearchPage, SellingPartnerHook

__all__ = ["OrderPage", "SearchPage", "SellingPartnerHook"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from selling_partner.hooks import sp_api

        return getattr(sp_api, name)
    raise AttributeError(name)

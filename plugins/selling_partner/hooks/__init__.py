"""SP-API hook package: ``SellingPartnerHook`` plus its errors, rate limiter and auth helpers.

``SellingPartnerHook`` is imported lazily so ``selling_partner.hooks.errors`` stays cheap to import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from selling_partner.hooks.selling_partner import OrderPage, SearchPage, SellingPartnerHook

__all__ = ["OrderPage", "SearchPage", "SellingPartnerHook"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from selling_partner.hooks import selling_partner

        return getattr(selling_partner, name)
    raise AttributeError(name)

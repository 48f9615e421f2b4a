"""Renderers: how the world's orders and changes look on the wire, one module per API surface.

* ``formats``: time and money formats shared by the surfaces;
* ``orders_v2026``: Orders API v2026-01-01 ``Order`` objects;
* ``orders_v0``: Orders API v0 ``Order``, ``OrderItem``, ``OrderBuyerInfo`` and ``OrderAddress``;
* ``notifications``: ORDER_CHANGE and FBA_OUTBOUND_SHIPMENT_STATUS bodies, foreign-seller and poison
  bodies;
* ``bad_records``: which orders the ``bad_records`` fault corrupts, and with what.

Renderers are pure functions of the world's state (a ``SimOrder``, a ``Change``); a corruption is
applied by the renderer of each surface, so the world itself always stays consistent.
"""

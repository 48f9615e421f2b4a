"""A stateful SP-API simulator: LWA, Orders v2026-01-01 and v0, Tokens, Notifications, SQS delivery.

Run it with ``python -m sp_api_sandbox serve`` (one sandbox) or ``python -m sp_api_sandbox up``
(a moto SQS server plus a sandbox publishing into it). Tests, the demo and the benchmarks start it
through ``sp_api_sandbox.launcher``. See docs/CONTRACTS.md for the command line and admin API.
"""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"

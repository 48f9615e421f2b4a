"""HTTP routes, one module per API: each has ``router(server) -> APIRouter`` that ``create_app`` mounts.

``lwa`` (Login with Amazon), ``orders_v2026``, ``orders_v0``, ``tokens`` (Restricted Data Tokens),
``notifications`` (destinations and subscriptions) and ``admin`` (``/_sandbox/...``). SP-API
operations are ``Route`` tables served through ``SandboxServer.call`` (auth, rate limit, faults);
adding an API is adding a module here (and its renderer in ``sp_api_sandbox.render``).
"""

"""``python -m sp_api_sandbox``: see ``sp_api_sandbox.cli``."""

from sp_api_sandbox.cli import main

raise SystemExit(main())

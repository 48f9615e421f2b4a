"""Amazon's SP-API models and notification schemas (Apache-2.0, see LICENSE and NOTICE here).

They are the contract between the sandbox and the hook: the sandbox renders what they describe and
the contract tests validate against them. ``load("orders_2026-01-01")`` returns the parsed JSON.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

MODELS_DIR = Path(__file__).resolve().parent


def names() -> list[str]:
    """Names of the bundled models and schemas (file names without ``.json``)."""
    return sorted(p.stem for p in MODELS_DIR.glob("*.json"))


def path(name: str) -> Path:
    """Path of one bundled model; ``name`` may carry the ``.json`` suffix."""
    stem = name.removesuffix(".json")
    if stem not in names():
        raise KeyError(f"unknown SP-API model {name!r}; bundled: {', '.join(names())}")
    return MODELS_DIR / f"{stem}.json"


@cache
def load(name: str) -> dict[str, Any]:
    """Parsed JSON of one bundled model (cached: treat the result as read-only)."""
    return json.loads(path(name).read_text(encoding="utf-8"))

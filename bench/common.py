"""Helpers shared by the benchmarks: result records, timing, a throw-away PostgreSQL database."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

#: Server the database benchmarks use; the user needs CREATEDB. Override with SP_BENCH_PG_ADMIN_DSN.
PG_ADMIN_DSN = os.environ.get("SP_BENCH_PG_ADMIN_DSN", "postgresql://root@127.0.0.1:5432/test")


def result(
    name: str,
    value: float,
    unit: str,
    *,
    target: float | None = None,
    baseline: float | None = None,
    higher_is_better: bool = True,
    target_on: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """One result row. With a ``baseline`` the ``target`` applies to ``ratio`` (value / baseline)
    unless ``target_on="value"``; without one it applies to ``value``. ``passed`` is None when there
    is no target."""
    if target_on not in (None, "value", "ratio"):
        raise ValueError(f"target_on must be 'value' or 'ratio', got {target_on!r}")
    ratio = (value / baseline) if baseline else None
    measured = ratio if (target_on or ("ratio" if baseline else "value")) == "ratio" else value
    passed = None
    if target is not None and measured is not None:
        passed = measured >= target if higher_is_better else measured <= target
    row = {
        "name": name,
        "value": round(value, 3),
        "unit": unit,
        "target": target,
        "baseline": None if baseline is None else round(baseline, 3),
        "ratio": None if ratio is None else round(ratio, 3),
        "passed": passed,
    }
    row.update(extra)
    return row


@contextmanager
def stopwatch() -> Iterator[dict[str, float]]:
    """``with stopwatch() as t: ...`` then ``t["seconds"]`` (monotonic clock)."""
    out = {"seconds": 0.0}
    start = time.perf_counter()
    try:
        yield out
    finally:
        out["seconds"] = time.perf_counter() - start


@contextmanager
def temporary_pg_database(prefix: str = "sp_bench") -> Iterator[str]:
    """Create an empty database on the benchmark server, yield its DSN, drop it afterwards."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    params = conninfo_to_dict(PG_ADMIN_DSN)
    params["dbname"] = name
    try:
        yield make_conninfo(**params)
    finally:
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

"""Query the demo's SQLite warehouse: ``python -m demo.query "SELECT ..." [--db .demo/warehouse.db]``.

Prints the result as an aligned table (at most ``--limit`` rows). No SQL given: the tables and views.
The same file opens in any SQLite client (``sqlite3 .demo/warehouse.db``).
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
from pathlib import Path

DEFAULT_DB = (
    Path(os.environ.get("SP_DEMO_DIR") or Path(__file__).resolve().parents[1] / ".demo") / "warehouse.db"
)


def table(headers: list[str], rows: list[tuple[object, ...]]) -> str:
    """``rows`` under ``headers``, columns aligned (NULL for None)."""
    cells = [headers] + [["NULL" if v is None else str(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demo.query", description=__doc__.split("\n")[0])
    parser.add_argument("sql", nargs="?", help="a query (default: list the tables and views)")
    parser.add_argument("--db", type=Path, default=DEFAULT_DB)
    parser.add_argument("--limit", type=int, default=100)
    args = parser.parse_args(argv)
    if not args.db.exists():
        print(f"{args.db} does not exist: run `make demo` first", file=sys.stderr)
        return 2
    sql = args.sql or "SELECT type, name FROM sqlite_master WHERE type IN ('table', 'view') ORDER BY 1, 2"
    with sqlite3.connect(f"file:{args.db}?mode=ro", uri=True) as conn:
        cur = conn.execute(sql)
        headers = [d[0] for d in cur.description or []]
        rows = cur.fetchmany(args.limit + 1)
    if headers:
        print(table(headers, rows[: args.limit]))
        if len(rows) > args.limit:
            print(f"(first {args.limit} rows)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

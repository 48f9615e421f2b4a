"""Run the benchmarks: ``python -m bench [--only NAME] [--list]``.

Discovers ``bench/bench_*.py`` modules (each with ``NAME`` and ``run()``), prints a table and merges
the results into ``bench/results.json``: entries of the benchmarks run are replaced, others kept; then
writes ``bench/report.md`` and its plots from all of them (``bench/report.py``).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results.json"
KEYS = ("name", "value", "unit", "target", "baseline", "ratio", "passed")
#: The whole ``make bench`` must finish within this many seconds on 2 cores (issue 14).
TOTAL_BUDGET_S = 1200.0


def discover() -> dict[str, ModuleType]:
    """NAME -> module for every ``bench_*.py`` next to this file."""
    found: dict[str, ModuleType] = {}
    for path in sorted(HERE.glob("bench_*.py")):
        module = importlib.import_module(f"bench.{path.stem}")
        name = getattr(module, "NAME", None)
        if not isinstance(name, str) or not callable(getattr(module, "run", None)):
            raise SystemExit(f"{path.name} must define NAME (str) and run() -> list[dict]")
        found[name] = module
    return found


def merge(existing: list[dict[str, Any]], ran: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Drop old entries of the benchmarks that ran (by NAME or by produced entry name), append new ones."""
    produced = {row["name"] for rows in ran.values() for row in rows}
    stale = produced | set(ran)
    kept = [row for row in existing if row.get("name") not in stale and row.get("benchmark") not in ran]
    return kept + [row for rows in ran.values() for row in rows]


def format_table(rows: list[dict[str, Any]]) -> str:
    def cell(v: Any) -> str:
        if v is None:
            return "-"
        if isinstance(v, bool):
            return "PASS" if v else "FAIL"
        if isinstance(v, float):
            return f"{v:,.3f}" if abs(v) < 100 else f"{v:,.0f}"
        return str(v)

    table = [list(KEYS)] + [[cell(r.get(k)) for k in KEYS] for r in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(KEYS))]
    lines = [
        "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(line, widths, strict=True)))
        for line in table
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def wall_row(name: str, seconds: float) -> dict[str, Any]:
    """How long one benchmark ran (wall clock, this machine), recorded beside its figures."""
    row = {"name": f"{name}.bench_wall", "value": round(seconds, 1), "unit": "s", "target": None}
    return {**row, "baseline": None, "ratio": None, "passed": None, "benchmark": name}


def total_row(seconds: float, walls: dict[str, float]) -> dict[str, Any]:
    """The whole run's wall time against the 20-minute budget (only written when every benchmark ran)."""
    return {
        "name": "bench.total_wall",
        "value": round(seconds, 1),
        "unit": "s",
        "target": TOTAL_BUDGET_S,
        "baseline": None,
        "ratio": round(seconds / TOTAL_BUDGET_S, 3),
        "passed": seconds <= TOTAL_BUDGET_S,
        "benchmark": "bench",
        "per_benchmark_s": {k: round(v, 1) for k, v in walls.items()},
        "cpus": os.cpu_count(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="run one benchmark by NAME")
    parser.add_argument("--list", action="store_true", help="list benchmark names and exit")
    args = parser.parse_args(argv)
    modules = discover()
    if args.list:
        print("\n".join(modules))
        return 0
    if args.only:
        if args.only not in modules:
            print(f"Unknown benchmark {args.only!r}; known: {', '.join(modules) or 'none'}", file=sys.stderr)
            return 2
        modules = {args.only: modules[args.only]}
    ran: dict[str, list[dict[str, Any]]] = {}
    failed = False
    walls: dict[str, float] = {}
    began = time.perf_counter()
    for name, module in modules.items():
        print(f"== {name}", flush=True)
        started = time.perf_counter()
        try:
            rows = list(module.run())
        except Exception:
            traceback.print_exc()
            failed = True
            continue
        walls[name] = time.perf_counter() - started
        print(f"== {name} took {walls[name]:.0f} s", flush=True)
        rows.append(wall_row(name, walls[name]))
        for row in rows:
            missing = [k for k in KEYS if k not in row]
            if missing:
                raise SystemExit(f"{name}: result {row.get('name')!r} lacks {missing}")
            row.setdefault("benchmark", name)
        ran[name] = rows
    if not args.only and not failed:
        ran["bench"] = [total_row(time.perf_counter() - began, walls)]
    existing = json.loads(RESULTS.read_text()) if RESULTS.exists() else []
    merged = merge(existing, ran)
    RESULTS.write_text(json.dumps(merged, indent=2) + "\n")
    shown = [r for rows in ran.values() for r in rows]
    if shown:
        print()
        print(format_table(shown))
    from bench.report import write_report

    report = write_report(merged, HERE)
    written = f"{RESULTS.relative_to(HERE.parent)} ({len(merged)} entries)"
    print(f"\nWrote {written} and {report.relative_to(HERE.parent)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

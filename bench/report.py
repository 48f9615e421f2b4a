"""Write ``bench/report.md`` and its PNG plots from ``bench/results.json``: ``python -m bench.report``.

``python -m bench`` calls :func:`write_report` after every run. The report holds the results table
(every entry of results.json, grouped by benchmark) and the plots whose data the benchmarks record
in their result rows: the sync's searchOrders calls against the allowed rate over time
(``sync_backfill.search_rate_vs_allowed``: ``series``, ``rate_per_s``, ``burst``), the events storm's
status-freshness curve against the sweep-only baseline's (``events_storm.status_freshness_p95``:
``curve``, ``baseline_curve_amazon``, ``baseline_curve_wall``), its enrichment progress against the
getOrder bound (``events_storm.enrich_rate_vs_allowed``: ``counters``, ``enriched``, ``first_call_s``,
``rate_per_s``, ``burst``) and the parse time per DAG file (``dag_parse.*``). A plot whose data is
missing is left out and the report says so.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
KEYS = ("name", "value", "unit", "target", "baseline", "ratio", "passed")


def cell(value: Any) -> str:
    """A table cell: PASS/FAIL for ``passed``, ``-`` for nothing, numbers rounded for reading."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "PASS" if value else "**FAIL**"
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value).replace("|", "\\|")


def table(rows: list[dict[str, Any]]) -> str:
    """The markdown table of ``rows`` (columns :data:`KEYS`, then the row's note if it has one)."""
    lines = ["| " + " | ".join(KEYS) + " | note |", "|" + "---|" * (len(KEYS) + 1)]
    for row in rows:
        note = str(row.get("note", "")).replace("|", "\\|")
        lines.append("| " + " | ".join(cell(row.get(k)) for k in KEYS) + f" | {note} |")
    return "\n".join(lines)


def _find(rows: list[dict[str, Any]], name: str) -> dict[str, Any] | None:
    return next((r for r in rows if r.get("name") == name), None)


def plot_sync_rate(rows: list[dict[str, Any]], ax: Any) -> bool:
    """Cumulative successful searchOrders calls against what the token bucket allows."""
    row = _find(rows, "sync_backfill.search_rate_vs_allowed")
    if not row or not row.get("series") or not row.get("rate_per_s"):
        return False
    t = [p[0] for p in row["series"]]
    calls = [p[1] for p in row["series"]]
    rate, burst = float(row["rate_per_s"]), float(row.get("burst") or 0)
    ax.step(t, calls, where="post", label="searchOrders pages committed")
    ax.plot(
        [0, t[-1]],
        [burst, burst + rate * t[-1]],
        "--",
        color="red",
        label=f"allowed: {burst:.0f} + {rate:.2f}/s x t",
    )
    ax.set(
        xlabel="seconds since the first page",
        ylabel="calls",
        title="Sync backfill: calls vs the allowed rate",
    )
    ax.legend(loc="upper left")
    return True


def plot_freshness(rows: list[dict[str, Any]], ax: Any) -> bool:
    """Share of the storm's orders whose status is current, by seconds after publish."""
    row = _find(rows, "events_storm.status_freshness_p95")
    if not row or not row.get("curve"):
        return False
    for key, label, style in (
        ("curve", "event path (wall s)", "-"),
        ("baseline_curve_amazon", "sweep only (Amazon s = wall x scale)", "--"),
        ("baseline_curve_wall", "sweep only (wall s)", ":"),
    ):
        points = row.get(key) or []
        if points:
            ax.step(
                [0.0] + [p[0] for p in points],
                [0.0] + [p[1] for p in points],
                style,
                where="post",
                label=label,
            )
    ax.set_xscale("symlog", linthresh=1.0)
    ax.set(
        xlabel="seconds after publish",
        ylabel="share of orders with their current status",
        title=f"Events storm: status freshness ({row.get('orders', '?')} orders)",
        ylim=(0, 1.02),
    )
    ax.legend(loc="upper left")
    return True


def plot_enrichment(rows: list[dict[str, Any]], ax: Any) -> bool:
    """Cumulative successful getOrder calls and enriched orders against the getOrder bound."""
    row = _find(rows, "events_storm.enrich_rate_vs_allowed")
    if not row or not row.get("counters") or row.get("first_call_s") is None or not row.get("rate_per_s"):
        return False
    t = [p[0] for p in row["counters"]]
    ax.plot(t, [p[1] for p in row["counters"]], label="getOrder calls (ok)")
    if row.get("enriched"):
        ax.plot([p[0] for p in row["enriched"]], [p[1] for p in row["enriched"]], label="orders enriched")
    first, rate, burst = float(row["first_call_s"]), float(row["rate_per_s"]), float(row.get("burst") or 0)
    end = max(t)
    ax.plot(
        [first, end],
        [burst, burst + rate * (end - first)],
        "--",
        color="red",
        label=f"bound from the first call: {burst:.0f} + {rate:.0f}/s x t",
    )
    ax.set_ylim(0, max(p[1] for p in row["counters"]) * 1.3 + 1)
    ax.set(
        xlabel="seconds after the storm began",
        ylabel="calls / orders",
        title="Events storm: enrichment vs the getOrder bound",
    )
    ax.legend(loc="upper left")
    return True


def plot_parse(rows: list[dict[str, Any]], ax: Any) -> bool:
    """Median parse time per DAG file against the 0.5 s target."""
    parse = [r for r in rows if str(r.get("name", "")).startswith("dag_parse.")]
    if not parse:
        return False
    names = [r["name"].removeprefix("dag_parse.") for r in parse]
    ax.barh(names, [r["value"] for r in parse])
    target = parse[0].get("target")
    if target:
        ax.axvline(target, color="red", linestyle="--", label=f"target {target} s")
        ax.legend(loc="lower right")
    ax.set(xlabel="seconds (median, fresh process per parse)", title="DAG parse time per file")
    return True


PLOTS: dict[str, tuple[str, Callable[[list[dict[str, Any]], Any], bool]]] = {
    "sync_rate.png": ("The sync's searchOrders calls against the allowed rate over time", plot_sync_rate),
    "storm_freshness.png": ("Events storm: status freshness, event path against the sweep-only baseline",
                            plot_freshness),
    "storm_enrichment.png": ("Events storm: enrichment progress against the getOrder bound", plot_enrichment),
    "dag_parse.png": ("Parse time per DAG file", plot_parse),
}  # fmt: skip


def write_plots(rows: list[dict[str, Any]], out_dir: Path) -> dict[str, str]:
    """Draw every plot whose data ``rows`` hold into ``out_dir``; returns file name -> caption."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written: dict[str, str] = {}
    for filename, (caption, draw) in PLOTS.items():
        fig, ax = plt.subplots(figsize=(8, 4.5))
        try:
            if draw(rows, ax):
                ax.grid(True, alpha=0.3)
                fig.tight_layout()
                fig.savefig(out_dir / filename, dpi=100)
                written[filename] = caption
        finally:
            plt.close(fig)
    return written


def render(rows: list[dict[str, Any]], plots: dict[str, str], *, generated: str | None = None) -> str:
    """The report's markdown: the table per benchmark, then the plots (and which ones are missing)."""
    generated = generated or datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    out = [
        "# Benchmark report",
        "",
        f"Generated by `make bench` (`python -m bench`) on {generated}, {os.cpu_count()} CPUs. Every "
        "comparison is measured side by side in the same run; `ratio` = value / baseline; `passed` "
        "applies the target to the ratio when there is a baseline, unless the row says otherwise "
        "(see each benchmark's module docstring in `bench/`). The raw figures, with every series "
        "plotted here, are in `bench/results.json`.",
        "",
    ]
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(str(row.get("benchmark") or str(row.get("name")).split(".")[0]), []).append(row)
    for name, group in groups.items():
        passed = [r["passed"] for r in group if r.get("passed") is not None]
        verdict = f"{sum(passed)} of {len(passed)} targets met" if passed else "no targets"
        out += [f"## {name} ({verdict})", "", table(group), ""]
    out += ["## Plots", ""]
    for filename, (caption, _draw) in PLOTS.items():
        if filename in plots:
            out += [f"### {caption}", "", f"![{caption}]({filename})", ""]
        else:
            out += [f"### {caption}", "", "_No data: the benchmark that records it has not run._", ""]
    return "\n".join(out).rstrip() + "\n"


def write_report(rows: list[dict[str, Any]], out_dir: Path = HERE) -> Path:
    """Write ``report.md`` and the plots into ``out_dir``; returns the report's path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    plots = write_plots(rows, out_dir)
    path = out_dir / "report.md"
    path.write_text(render(rows, plots))
    return path


if __name__ == "__main__":
    print(write_report(json.loads((HERE / "results.json").read_text())))

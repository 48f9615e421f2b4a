"""The benchmark report writer: the table, the plots from the rows' series, and what a missing one says."""

from __future__ import annotations

from bench.common import result
from bench.report import PLOTS, render, table, write_report

PNG = b"\x89PNG\r\n\x1a\n"


def _rows() -> list[dict]:
    sync = result(
        "sync_backfill.search_rate_vs_allowed",
        0.97,
        "fraction",
        target=0.95,
        series=[[0.0, 1], [3.0, 2], [6.0, 3]],
        rate_per_s=0.336,
        burst=20,
    )
    fresh = result(
        "events_storm.status_freshness_p95",
        12.5,
        "s",
        target=20.0,
        baseline=900.0,
        target_on="value",
        higher_is_better=False,
        orders=4,
        curve=[[1.0, 0.25], [2.0, 0.5], [12.5, 1.0]],
        baseline_curve_amazon=[[300.0, 0.5], [900.0, 1.0]],
        baseline_curve_wall=[[5.0, 0.5], [15.0, 1.0]],
    )
    enrich = result(
        "events_storm.enrich_rate_vs_allowed",
        0.8,
        "fraction",
        counters=[[0.0, 0], [1.0, 30], [2.0, 60]],
        enriched=[[0.5, 10], [2.0, 60]],
        first_call_s=0.5,
        rate_per_s=30.0,
        burst=30,
    )
    parse = result(
        "dag_parse.sp_api_order_events", 0.7, "s", target=0.5, higher_is_better=False, note="heavy | import"
    )
    for row, bench in (
        (sync, "sync_backfill"),
        (fresh, "events_storm"),
        (enrich, "events_storm"),
        (parse, "dag_parse"),
    ):
        row["benchmark"] = bench
    return [sync, fresh, enrich, parse]  # fmt: skip


def test_table_marks_pass_and_fail_and_escapes_pipes():
    rows = _rows()
    text = table(rows)
    lines = text.splitlines()
    assert lines[0].startswith("| name | value | unit | target | baseline | ratio | passed | note |")
    assert len(lines) == 2 + len(rows)
    # The freshness target applies to the value (12.5 s <= 20 s) although a baseline is given.
    assert "| events_storm.status_freshness_p95 | 12.500 | s | 20.000 | 900 | 0.014 | PASS |" in text
    assert (
        "| dag_parse.sp_api_order_events | 0.700 | s | 0.500 | - | - | **FAIL** | heavy \\| import |" in text
    )


def test_write_report_draws_every_plot_with_data(tmp_path):
    path = write_report(_rows(), tmp_path)
    text = path.read_text()
    for filename in PLOTS:
        assert (tmp_path / filename).read_bytes().startswith(PNG), filename
        assert f"]({filename})" in text
    assert "## events_storm (1 of 1 targets met)" in text
    assert "## dag_parse (0 of 1 targets met)" in text
    assert "No data" not in text


def test_missing_series_leave_the_plot_out_and_say_so(tmp_path):
    rows = [r for r in _rows() if not r["name"].startswith("events_storm")]
    rows[0] = {**rows[0], "series": []}
    path = write_report(rows, tmp_path)
    text = path.read_text()
    assert not (tmp_path / "storm_freshness.png").exists()
    assert not (tmp_path / "sync_rate.png").exists()
    assert (tmp_path / "dag_parse.png").exists()
    assert text.count("_No data: the benchmark that records it has not run._") == 3


def test_render_is_a_function_of_the_rows():
    rows = _rows()
    plots = {name: caption for name, (caption, _draw) in PLOTS.items()}
    assert render(rows, plots, generated="then") == render(rows, plots, generated="then")
    assert "on then," in render(rows, plots, generated="then")

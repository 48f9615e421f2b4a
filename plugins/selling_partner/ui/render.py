"""Server-side HTML and SVG of the page (no template engine, no Node build; every value is escaped).

``page`` is the whole document: the panels' fragments, a little CSS and one small inline script that
re-fetches each panel's fragment (``panels/<name>``) every few seconds and swaps it in, so the counts
move without a reload. Elements carry ``data-*`` attributes naming what they show (e.g. the cell of
seller X, marketplace Y, status SHIPPED), for tests and for people who scrape the HTML.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from html import escape
from typing import Any

TITLE = "Amazon orders"
#: Fill colours of the order statuses in the chart (others: grey).
STATUS_COLOURS = {
    "PENDING_AVAILABILITY": "#b0bec5",
    "PENDING": "#ffb74d",
    "UNSHIPPED": "#e57373",
    "PARTIALLY_SHIPPED": "#ba68c8",
    "SHIPPED": "#4caf50",
    "CANCELLED": "#78909c",
    "UNFULFILLABLE": "#5d4037",
}
PANEL_TITLES = {
    "orders": "Orders by status",
    "freshness": "Freshness",
    "work": "Work in flight",
    "quota": "SP-API quota",
    "charts": "Charts",
}


def e(value: Any) -> str:
    """Escaped text ('-' for None)."""
    return "-" if value is None else escape(str(value), quote=True)


def duration(seconds: float | None) -> str:
    """``45 s``, ``12 min``, ``3.5 h``, ``2.1 d`` ('-' for None; negative = in the future: ``in 5 min``)."""
    if seconds is None:
        return "-"
    if seconds < 0:
        return f"in {duration(-seconds)}"
    if seconds < 90:
        return f"{seconds:.0f} s" if seconds >= 10 or seconds == int(seconds) else f"{seconds:.1f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 36 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def _attrs(**data: Any) -> str:
    return "".join(f' data-{k.replace("_", "-")}="{e(v)}"' for k, v in data.items() if v is not None)


def _table(head: Sequence[str], rows: Sequence[str], empty: str, cls: str = "") -> str:
    if not rows:
        return f'<p class="empty">{e(empty)}</p>'
    ths = "".join(f"<th>{e(h)}</th>" for h in head)
    return f'<table class="{cls}"><thead><tr>{ths}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _time(iso: str | None) -> str:
    return f'<time datetime="{e(iso)}">{e(iso.replace("T", " ").removesuffix("Z") if iso else None)}</time>'


def _link(url: str | None, text: str) -> str:
    return e(text) if not url else f'<a href="{e(url)}" target="_top">{e(text)}</a>'


# --------------------------------------------------------------------------- panels


def _ship_by(seconds: int | None) -> str:
    if seconds is None:
        return ""
    if seconds < 0:
        return f'<span class="late">({e(duration(-seconds))} late)</span>'
    return f'<span class="muted">(in {e(duration(seconds))})</span>'


def render_orders(d: Mapping[str, Any]) -> str:
    statuses = d["statuses"]
    head = ["Seller", "Marketplace", "Total", *statuses]
    rows = []
    for g in d["sellers"]:
        cells = [f"<td>{e(g['seller_id'])}</td><td>{e(g['marketplace_id'])}</td>"]
        cells.append(
            f'<td class="num"{_attrs(cell="total", seller=g["seller_id"], marketplace=g["marketplace_id"])}>'
            f"{g['total']}</td>"
        )
        for s in statuses:
            n = g["by_status"].get(s, 0)
            h1, h24 = g["changes_1h"].get(s, 0), g["changes_24h"].get(s, 0)
            attrs = _attrs(cell="count", seller=g["seller_id"], marketplace=g["marketplace_id"], status=s)
            delta = (
                f'<span class="delta" title="status changes to {e(s)}: last hour / last 24 hours"'
                f"{_attrs(changes_1h=h1, changes_24h=h24)}>+{h1} / +{h24}</span>"
            )
            cells.append(f'<td class="num"><span class="count"{attrs}>{n}</span>{delta}</td>')
        rows.append(f"<tr>{''.join(cells)}</tr>")
    totals = "".join(
        f'<td class="num"{_attrs(cell="status-total", status=s)}>{d["totals"].get(s, 0)}</td>'
        for s in statuses
    )
    if rows:
        rows.append(
            f'<tr class="total"><td colspan="2">All</td><td class="num" data-cell="grand-total">'
            f"{d['total']}</td>{totals}</tr>"
        )
    fbm = d["fbm_awaiting_shipment"]
    first = [
        f"<tr><td>{e(r['order_id'])}</td><td>{e(r['seller_id'])}</td><td>{e(r['marketplace_id'])}</td>"
        f"<td>{e(r['order_status'])}</td><td>{_time(r['latest_ship_time'])}"
        f" {_ship_by(r['ship_by_in_seconds'])}"
        f'</td><td class="num">{e(r["items_unshipped"])}</td></tr>'
        for r in fbm["first_to_ship"]
    ]
    return (
        '<p class="legend">Current status of every order in the warehouse; under each count, the status '
        "changes to it in the last hour / last 24 hours (Amazon's change time).</p>"
        + _table(head, rows, "No orders in the warehouse yet.", "counts")
        + f'<h3>FBM orders waiting to ship: <span data-cell="fbm-awaiting">{fbm["orders"]}</span>'
        f"{', oldest ship-by ' + _time(fbm['oldest_ship_by']) if fbm['oldest_ship_by'] else ''}</h3>"
        + _table(
            ["Order", "Seller", "Marketplace", "Status", "Ship by", "Units to ship"],
            first,
            "No FBM order is waiting to ship.",
        )
    )


def render_freshness(d: Mapping[str, Any]) -> str:
    lat = d["publish_to_status"]
    notes = [
        f"<tr><td>{e(r['conn_id'])}</td><td>{e(r['seller_id'])}</td><td>{_time(r['newest_received_at'])}</td>"
        f'<td class="num"{_attrs(cell="notification-age", conn=r["conn_id"])}>'
        f"{e(duration(r['age_seconds']))}</td>"
        f'<td class="num">{r["notifications"]}</td></tr>'
        for r in d["notifications"]
    ]
    sweeps = [
        f"<tr><td>{e(r['conn_id'])}</td><td>{_time(r['cursor'])}</td>"
        f'<td class="num"{_attrs(cell="sweep-lag", conn=r["conn_id"], seconds=r["lag_seconds"])}>'
        f"{e(duration(r['lag_seconds']))}</td><td>{_time(r['updated_at'])}</td></tr>"
        for r in d["sweep_cursors"]
    ]
    missed = d["missed_by_events"]
    missed_rows = [
        f"<tr><td>{e(r['conn_id'])}</td>"
        f'<td class="num"{_attrs(cell="missed", conn=r["conn_id"])}>{r["missed_by_events"]}</td>'
        f'<td class="num">{r["sweep_runs"]}</td><td>{_time(r["last_finished_at"])}</td></tr>'
        for r in missed["by_seller"]
    ]
    return (
        "<h3>Newest notification per seller</h3>"
        + _table(
            ["Connection", "Seller", "Newest received", "Age", "Landed"],
            notes,
            "No notification has landed yet (is the event path set up?).",
        )
        + '<h3>Publish to status, last hour</h3><p class="kpis">'
        f'<span>p50 <b data-cell="latency-p50">{e(duration(lat["p50_seconds"]))}</b></span>'
        f'<span>p95 <b data-cell="latency-p95">{e(duration(lat["p95_seconds"]))}</b></span>'
        f"<span>max <b>{e(duration(lat['max_seconds']))}</b></span>"
        f'<span>notifications <b data-cell="latency-samples">{lat["samples"]}</b></span></p>'
        "<h3>Sweep cursor lag</h3>"
        + _table(
            ["Connection", "Cursor", "Lag behind now", "Checkpoint written"], sweeps, "No sweep checkpoint."
        )
        + f'<h3>Orders missed by events, caught by the sweep (24 h): <span data-cell="missed-total">'
        f"{missed['orders']}</span></h3>"
        + _table(
            ["Connection", "Missed orders", "Sweep tries", "Last sweep"],
            missed_rows,
            "No sweep finished in the last 24 hours.",
        )
    )


def _percent(share: float | None) -> str | None:
    return None if share is None else f"{share * 100:.0f} %"


def render_work(d: Mapping[str, Any]) -> str:
    queue = [
        f"<tr><td>{e(r['conn_id'])}</td>"
        f'<td class="num"{_attrs(cell="queued", conn=r["conn_id"])}>{r["queued"]}'
        f"</td><td>{_time(r['oldest_queued_at'])} ({e(duration(r['oldest_age_seconds']))})</td>"
        f'<td class="num">{r["retrying"]}</td><td class="num">{r["claimed"]}</td></tr>'
        for r in d["enrichment"]
    ]
    oq = d["order_quarantine"]
    reasons = [
        f"<tr><td>{e(r['source'])}</td><td>{e(r['reason'])}</td>"
        f'<td class="num"{_attrs(cell="quarantine-reason", source=r["source"])}>{r["rows"]}</td>'
        f"<td>{_time(r['newest'])}</td></tr>"
        for r in oq["by_reason"]
    ]
    newest = [
        f"<tr><td>{e(r['order_id'])}</td><td>{e(r['source'])}</td><td>{e(r['reason'])}</td>"
        f'<td class="num">{r["attempts"]}</td><td>{_time(r["last_seen_at"])}</td>'
        f"<td>{_link(r['log_url'], 'task log') if r['log_url'] else '-'}</td></tr>"
        for r in oq["newest"]
    ]
    nq = d["notification_quarantine"]
    nreasons = [
        f'<tr><td>{e(r["reason"])}</td><td class="num">{r["rows"]}</td><td>{_time(r["newest"])}</td></tr>'
        for r in nq["by_reason"]
    ]
    ckpts = []
    for c in d["checkpoints"]:
        window = (
            f"{_time(c['window_start'])} → {_time(c['window_end'])}"
            if c["window_start"]
            else "between windows"
        )
        state = "done" if c["done"] else ("running" if c["running"] else "waiting")
        progress = "" if c["progress"] is None else f"{c['progress'] * 100:.0f} %"
        eta = "-" if c["eta_seconds"] is None else duration(c["eta_seconds"])
        ckpts.append(
            f"<tr{_attrs(checkpoint=c['checkpoint'])}><td>{e(c['conn_id'])}</td><td>{e(c['mode'])}</td>"
            f"<td>{e(state)}</td><td>{_time(c['cursor'])}</td><td>{window}</td>"
            f'<td class="num">{c["window_pages"]} / {c["pages"]}</td><td class="num">{c["orders"]}</td>'
            f'<td class="num">{e(progress or None)}</td>'
            f'<td class="num">{e(c["pages_left"])} ({e(eta)})</td><td>{_time(c["updated_at"])}</td></tr>'
        )
    history = [
        f"<tr{_attrs(ledger=h['ledger'])}><td>{e(h['conn_id'])}</td>"
        f"<td>{_time(h['start'])} → {_time(h['end'])}</td>"
        f'<td class="num">{h["finished"]} / {h["windows"]}</td><td class="num">{h["in_flight"]}</td>'
        f'<td class="num">{h["quarantined"]}</td><td class="num">{h["orders"]}</td>'
        f'<td class="num">{e(_percent(h["progress"]))}</td>'
        f'<td class="num"{_attrs(cell="history-eta", ledger=h["ledger"])}>'
        f"{e('done' if h['done'] else duration(h['eta_seconds']))}</td><td>{_time(h['updated_at'])}</td></tr>"
        for h in d.get("history_loads", [])
    ]
    return (
        f'<h3>Enrichment queue: <span data-cell="enrichment-total">{d["enrichment_queued"]}</span>'
        " orders</h3>"
        + _table(["Connection", "Queued", "Oldest", "Retrying", "Claimed now"], queue, "The queue is empty.")
        + f'<h3>Order quarantine (open): <span data-cell="order-quarantine-open">{oq["open"]}</span></h3>'
        + _table(["Source", "Reason", "Rows", "Newest"], reasons, "Nothing quarantined.")
        + _table(["Order", "Source", "Reason", "Sightings", "Last seen", "Log"], newest, "", "newest")
        + f'<h3>Notification quarantine: <span data-cell="notification-quarantine">{nq["rows"]}</span></h3>'
        + _table(["Reason (quoted values hidden)", "Messages", "Newest"], nreasons, "Nothing quarantined.")
        + "<h3>Sync checkpoints</h3>"
        + _table(
            [
                "Connection",
                "Mode",
                "State",
                "Cursor",
                "Open window",
                "Pages (window / all)",
                "Orders",
                "Progress",
                "Pages left (ETA)",
                "Written",
            ],
            ckpts,
            "No checkpoint yet (the sync has not run).",
        )
        + "<h3>History loads (order reports)</h3>"
        + _table(
            [
                "Connection",
                "Range",
                "Windows done",
                "At Amazon",
                "Quarantined",
                "Orders",
                "Progress",
                "ETA",
                "Written",
            ],
            history,
            "No history load (sp_api_orders_history) has run.",
        )
    )


def render_quota(d: Mapping[str, Any]) -> str:
    runs = [
        f'<tr><td>{e(r["conn_id"])}</td><td>{e(r["mode"])}</td><td class="num">{r["tries"]}</td>'
        f'<td class="num"{_attrs(cell="calls", conn=r["conn_id"], mode=r["mode"])}>{r["calls"]}</td>'
        f'<td class="num"{_attrs(cell="throttled", conn=r["conn_id"], mode=r["mode"])}>{r["throttled"]}</td>'
        f'<td class="num">{r["retries"]}</td><td class="num">{r["deferrals"]}</td></tr>'
        for r in d["runs"]
    ]
    buckets = []
    for b in d["buckets"]:
        fill = b["fill"] or 0.0
        bar = f'<span class="bar"><span style="width:{fill * 100:.0f}%"></span></span>'
        buckets.append(
            f"<tr><td>{e(b['seller_id'])}</td><td>{e(b['region'])}</td><td>{e(b['operation'])}</td>"
            f'<td class="num"{_attrs(cell="bucket", seller=b["seller_id"], operation=b["operation"])}>'
            f"{max(0.0, b['tokens']):.1f} / {b['burst']:g}</td><td>{bar} {fill * 100:.0f} %</td>"
            f'<td class="num">{b["rate"]:g}/s</td><td>{_time(b["last_used_at"])}</td>'
            f"<td>{e(b['source'])}</td></tr>"
        )
    return (
        f'<h3>Last hour: <span data-cell="calls-total">{d["calls"]}</span> calls, '
        f'<span data-cell="throttled-total">{d["throttled"]}</span> 429s</h3>'
        '<p class="legend">Recorded by the order sync per task try in <code>sp_sync_runs</code> '
        "(every operation "
        "of the try together; the warehouse keeps no per-operation split). Per operation, the hook sends "
        "<code>sp_api.calls.&lt;operation&gt;</code> and <code>sp_api.throttled.&lt;operation&gt;</code> "
        "to StatsD.</p>"
        + _table(
            ["Connection", "Mode", "Tries", "Calls", "429s", "Retries", "Deferrals"],
            runs,
            "No sync try finished in the last hour.",
        )
        + "<h3>Token buckets now</h3>"
        + _table(
            ["Seller", "Region", "Operation", "Tokens", "Full", "Rate", "Last used", "Backend"],
            buckets,
            "No bucket saved yet (the variable or postgres backend saves one after the first call).",
        )
    )


# --------------------------------------------------------------------------- charts


def status_chart_svg(d: Mapping[str, Any], width: int = 760, height: int = 230) -> str:
    """Stacked bars: status changes per hour (24 bars) by new status, with a legend."""
    hours, series = d["hours"], d["series"]
    left, top, bottom, right = 40, 10, 40, 10
    plot_w, plot_h = width - left - right, height - top - bottom
    totals = [sum(col) for col in zip(*series.values(), strict=True)] if series else [0] * len(hours)
    peak = max([*totals, 1])
    bar_w = plot_w / max(len(hours), 1)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" '
        f'role="img" aria-label="Order status changes per hour, last 24 hours" data-chart="status-by-hour">'
    ]
    for frac in (0, 0.5, 1):
        y = top + plot_h * (1 - frac)
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
        parts.append(f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end">{round(peak * frac)}</text>')
    for i, hour in enumerate(hours):
        y = top + plot_h
        for status, values in series.items():
            n = values[i]
            if not n:
                continue
            h = plot_h * n / peak
            y -= h
            colour = STATUS_COLOURS.get(status, "#9e9e9e")
            parts.append(
                f'<rect x="{left + i * bar_w + 1:.1f}" y="{y:.1f}" width="{bar_w - 2:.1f}" height="{h:.1f}" '
                f'fill="{colour}"{_attrs(hour=hour, status=status, changes=n)}>'
                f"<title>{e(hour)} {e(status)}: {n}"
                "</title></rect>"
            )
        if i % 3 == 0:
            parts.append(
                f'<text x="{left + (i + 0.5) * bar_w:.1f}" y="{top + plot_h + 14}" '
                f'text-anchor="middle">{e(hour[11:16])}</text>'
            )
    x = left
    for status in series:
        parts.append(
            f'<rect x="{x}" y="{height - 14}" width="10" height="10" '
            f'fill="{STATUS_COLOURS.get(status, "#9e9e9e")}"/>'
        )
        parts.append(f'<text x="{x + 14}" y="{height - 5}">{e(status)}</text>')
        x += 22 + 7 * len(status)
    parts.append("</svg>")
    return "".join(parts)


def latency_chart_svg(d: Mapping[str, Any], width: int = 760, height: int = 200) -> str:
    """Histogram of publish-to-status seconds (last hour)."""
    buckets = d["histogram"]
    left, top, bottom, right = 40, 10, 30, 10
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max([b["count"] for b in buckets] + [1])
    bar_w = plot_w / len(buckets)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" role="img" '
        'aria-label="Publish to status latency, last hour" data-chart="latency">'
    ]
    for frac in (0, 0.5, 1):
        y = top + plot_h * (1 - frac)
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
        parts.append(f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end">{round(peak * frac)}</text>')
    for i, b in enumerate(buckets):
        h = plot_h * b["count"] / peak
        x = left + i * bar_w
        parts.append(
            f'<rect x="{x + 2:.1f}" y="{top + plot_h - h:.1f}" width="{bar_w - 4:.1f}" height="{h:.1f}" '
            f'fill="#42a5f5"{_attrs(bucket=b["label"], count=b["count"])}>'
            f"<title>{e(b['label'])}: {b['count']}"
            "</title></rect>"
        )
        parts.append(
            f'<text x="{x + bar_w / 2:.1f}" y="{top + plot_h + 14}" text-anchor="middle">'
            f"{e(b['label'])}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def render_charts(d: Mapping[str, Any]) -> str:
    lat = d["publish_to_status"]
    return (
        "<h3>Status changes per hour, last 24 hours (UTC)</h3>"
        + status_chart_svg(d["status_changes_by_hour"])
        + f"<h3>Publish to status, last hour ({lat['samples']} notifications; "
        f"p50 {e(duration(lat['p50_seconds']))}, "
        f"p95 {e(duration(lat['p95_seconds']))})</h3>" + latency_chart_svg(lat)
    )


RENDERERS: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "orders": render_orders,
    "freshness": render_freshness,
    "work": render_work,
    "quota": render_quota,
    "charts": render_charts,
}


def render_unavailable(message: str) -> str:
    """The panel body when its source cannot be read."""
    return f'<div class="unavailable" role="alert"><b>Data unavailable.</b> {e(message)}</div>'


# --------------------------------------------------------------------------- the page

CSS = """
:root{color-scheme:light dark;--fg:#1d2733;--muted:#6b7785;--line:#d9dee4;--bg:#fff;--card:#f7f9fb}
@media (prefers-color-scheme:dark){:root{--fg:#e6edf3;--muted:#9aa7b4;--line:#33404d;--bg:#121820;
--card:#18212b}}
body{font:14px/1.4 system-ui,sans-serif;color:var(--fg);background:var(--bg);margin:0;padding:12px 16px}
header{display:flex;align-items:baseline;gap:16px;flex-wrap:wrap}
h1{font-size:20px;margin:0 0 8px}h2{font-size:16px;margin:0 0 6px}h3{font-size:14px;margin:12px 0 4px}
.muted,.legend,#status{color:var(--muted)}.legend{margin:2px 0 6px}
section{overflow-x:auto;background:var(--card);border:1px solid var(--line);border-radius:6px;
padding:10px 12px;margin:0 0 12px}svg{display:block;max-width:900px}
table{border-collapse:collapse;width:100%;margin:4px 0}th,td{border-bottom:1px solid var(--line);
padding:3px 6px;text-align:left;vertical-align:top}th{font-weight:600;white-space:nowrap}
td.num{text-align:right;white-space:nowrap}.count{font-weight:600;font-size:15px}
.delta{display:block;font-size:11px;color:var(--muted)}tr.total td{font-weight:600}
.late{color:#d32f2f;font-weight:600}.kpis span{margin-right:18px}
.unavailable{border-left:4px solid #d32f2f;padding:6px 10px;background:rgba(211,47,47,.08)}
.bar{display:inline-block;width:80px;height:8px;background:var(--line);border-radius:4px;vertical-align:middle}
.bar span{display:block;height:8px;background:#42a5f5;border-radius:4px}
svg text{font-size:11px;fill:var(--muted)}svg line.grid{stroke:var(--line)}
.grid2{display:grid;grid-template-columns:repeat(auto-fit,minmax(520px,1fr));gap:12px}
.stale{opacity:.6}
"""

#: Re-fetches every panel's fragment; marks a panel stale (keeping its last numbers) when a fetch fails.
SCRIPT = """
(function () {
  var every = Number(document.body.getAttribute('data-refresh-seconds')) * 1000;
  var status = document.getElementById('status');
  function refresh() {
    var panels = document.querySelectorAll('[data-panel]');
    var jobs = Array.prototype.map.call(panels, function (el) {
      return fetch('panels/' + el.getAttribute('data-panel'), {credentials: 'same-origin', cache: 'no-store'})
        .then(function (r) { if (!r.ok) { throw new Error('HTTP ' + r.status); } return r.text(); })
        .then(function (html) { el.querySelector('.body').innerHTML = html; el.classList.remove('stale'); })
        .catch(function (err) { el.classList.add('stale'); return err; });
    });
    Promise.all(jobs).then(function (res) {
      var failed = res.filter(function (x) { return x instanceof Error; }).length;
      var n = Number(document.body.getAttribute('data-refreshes') || 0) + 1;
      document.body.setAttribute('data-refreshes', String(n));
      status.textContent = 'updated ' + new Date().toISOString().slice(11, 19) + ' UTC' +
        (failed ? ' (' + failed + ' panel(s) could not be refreshed: ' + res.filter(function (x) {
          return x instanceof Error; })[0].message + ')' : '');
    });
  }
  if (every > 0) { setInterval(refresh, every); }
})();
"""


def page(bodies: Mapping[str, str], *, refresh_seconds: float, generated_at: str, warehouse: str) -> str:
    """The whole page: a header, one ``<section data-panel>`` per panel, the refresh script."""

    def section(name: str) -> str:
        return (
            f'<section data-panel="{e(name)}" id="panel-{e(name)}"><h2>{e(PANEL_TITLES[name])}</h2>'
            f'<div class="body">{bodies[name]}</div></section>'
        )

    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{e(TITLE)}</title><style>{CSS}</style></head>"
        f'<body data-refresh-seconds="{refresh_seconds:g}" data-refreshes="0">'
        f"<header><h1>{e(TITLE)}</h1>"
        f'<span class="muted">warehouse <code>{e(warehouse)}</code> · refreshes every {refresh_seconds:g} s'
        f' · <span id="status">rendered {e(generated_at)}</span> · JSON: <a href="api/orders">orders</a>, '
        '<a href="api/freshness">freshness</a>, <a href="api/work">work</a>, <a href="api/quota">quota</a>, '
        '<a href="api/charts">charts</a></span></header>'
        + section("orders")
        + '<div class="grid2">'
        + section("freshness")
        + section("quota")
        + "</div>"
        + section("work")
        + section("charts")
        + f"<script>{SCRIPT}</script></body></html>"
    )

"""Pure sync planning: keys, windows, page bookkeeping, restarts, lookback and ETA."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from selling_partner import sync as plan
from selling_partner.checkpoint import MemoryCheckpointStore, dumps_checkpoint, loads_checkpoint
from selling_partner.validation import parse_bool

T0 = datetime(2026, 10, 1, tzinfo=UTC)
H = timedelta(hours=1)
LOOKBACK = timedelta(minutes=5)


def sweep(cursor: datetime = T0) -> dict:
    return plan.new_checkpoint(
        mode="sweep", conn_id="sp_api_default", marketplace_ids=["B", "A1"], cursor=cursor, now=cursor
    )


def backfill(start: datetime = T0, end: datetime = T0 + 10 * H) -> dict:
    return plan.new_checkpoint(
        mode="backfill",
        conn_id="c",
        marketplace_ids=["ATVPDKIKX0DER"],
        cursor=start,
        now=start,
        backfill_end=end,
    )


def test_key_depends_on_conn_marketplace_set_and_mode_not_order():
    a = plan.checkpoint_key("sp_api_default", ["ATVPDKIKX0DER", "A2EUQ1WTGCTBG2"], "sweep")
    b = plan.checkpoint_key("sp_api_default", ["A2EUQ1WTGCTBG2", "ATVPDKIKX0DER"], "sweep")
    assert a == b
    assert a.startswith("sp_api_sync__sp_api_default__") and a.endswith("__sweep")
    assert plan.checkpoint_key("sp_api_default", ["ATVPDKIKX0DER"], "sweep") != a
    assert plan.checkpoint_key("sp_api_default", ["ATVPDKIKX0DER", "A2EUQ1WTGCTBG2"], "backfill") != a
    assert plan.checkpoint_key("other", ["ATVPDKIKX0DER", "A2EUQ1WTGCTBG2"], "sweep") != a
    with pytest.raises(ValueError):
        plan.checkpoint_key("bad/../id", ["ATVPDKIKX0DER"], "sweep")
    with pytest.raises(ValueError):
        plan.checkpoint_key("c", ["ATVPDKIKX0DER"], "everything")


def test_parsers():
    assert plan.to_utc("2026-10-01") == T0
    assert plan.to_utc("2026-10-01T02:00:00Z") == T0 + 2 * H
    assert plan.to_utc("2026-10-01T04:00:00+02:00") == T0 + 2 * H
    assert plan.to_utc("") is None and plan.to_utc("None") is None
    assert plan.parse_marketplace_ids("ATVPDKIKX0DER, A2EUQ1WTGCTBG2") == ["A2EUQ1WTGCTBG2", "ATVPDKIKX0DER"]
    assert plan.parse_marketplace_ids("['ATVPDKIKX0DER']") == ["ATVPDKIKX0DER"]
    assert plan.parse_marketplace_ids(None) is None and plan.parse_marketplace_ids("[]") is None
    assert parse_bool("True", name="x") and not parse_bool("false", name="x") and parse_bool(True, name="x")
    with pytest.raises(ValueError, match="boolean"):
        parse_bool("ture", name="reset_checkpoint")
    with pytest.raises(ValueError, match="invalid marketplace"):
        plan.parse_marketplace_ids(["../x"])


def test_sweep_windows_are_capped_and_close_at_the_horizon():
    ckpt = sweep()
    w = plan.next_window(ckpt, horizon=T0 + 30 * H, max_window=24 * H)
    assert (w.start, w.end, w.page_token, w.resumed) == (T0, T0 + 24 * H, None, False)
    ckpt = plan.open_window(ckpt, w, now=T0)
    ckpt, done = plan.record_page(
        ckpt, updated_times=[T0 + H], next_token=None, echoed_end=w.end, now=T0, lookback=LOOKBACK
    )
    assert done and ckpt["cursor"] == plan.iso(T0 + 24 * H - LOOKBACK)
    w2 = plan.next_window(ckpt, horizon=T0 + 30 * H, max_window=24 * H)
    assert (w2.start, w2.end) == (T0 + 24 * H - LOOKBACK, T0 + 30 * H)
    ckpt = plan.open_window(ckpt, w2, now=T0)
    ckpt, done = plan.record_page(
        ckpt, updated_times=[], next_token=None, echoed_end=None, now=T0, lookback=LOOKBACK
    )
    # At the horizon: nothing more this run, even though the lookback moved the cursor back.
    assert plan.next_window(ckpt, horizon=T0 + 30 * H, max_window=24 * H) is None
    # The next run (a later horizon) overlaps the previous window by the lookback.
    w3 = plan.next_window(ckpt, horizon=T0 + 31 * H, max_window=24 * H)
    assert (w3.start, w3.end) == (T0 + 30 * H - LOOKBACK, T0 + 31 * H)
    assert ckpt["windows"] == 2


def test_backfill_windows_are_contiguous_and_finish():
    ckpt = backfill()
    seen = []
    while (w := plan.next_window(ckpt, horizon=T0 + 100 * H, max_window=4 * H)) is not None:
        seen.append((w.start, w.end))
        ckpt = plan.open_window(ckpt, w, now=T0)
        ckpt, done = plan.record_page(
            ckpt, updated_times=[w.start], next_token=None, echoed_end=w.end, now=T0, lookback=timedelta(0)
        )
        assert done
    assert seen == [(T0, T0 + 4 * H), (T0 + 4 * H, T0 + 8 * H), (T0 + 8 * H, T0 + 10 * H)]
    assert ckpt["done"] is True and ckpt["pages"] == 3 and ckpt["orders"] == 3


def test_resume_at_saved_page_token():
    ckpt = sweep()
    w = plan.next_window(ckpt, horizon=T0 + 5 * H, max_window=24 * H)
    ckpt = plan.open_window(ckpt, w, now=T0)
    ckpt, done = plan.record_page(
        ckpt,
        updated_times=[T0 + H, T0 + 2 * H],
        next_token="tok2",
        echoed_end=w.end,
        now=T0,
        lookback=LOOKBACK,
    )
    assert not done
    # Survives a JSON round trip (the Variable) and resumes the same window at the next page.
    ckpt = loads_checkpoint(dumps_checkpoint(ckpt))
    again = plan.next_window(ckpt, horizon=T0 + 9 * H, max_window=24 * H)
    assert again == plan.Window(start=T0, end=T0 + 5 * H, page_token="tok2", resumed=True)
    assert ckpt["window_pages"] == 1 and ckpt["window_orders"] == 2
    assert ckpt["last_committed_updated_time"] == plan.iso(T0 + 2 * H)


def test_expired_token_restarts_from_last_committed_when_sorted():
    ckpt = plan.open_window(sweep(), plan.Window(T0, T0 + 5 * H), now=T0)
    ckpt, _ = plan.record_page(
        ckpt, updated_times=[T0 + H, T0 + 2 * H], next_token="t", echoed_end=None, now=T0, lookback=LOOKBACK
    )
    restarted = plan.restart_window(ckpt, now=T0, epsilon=timedelta(seconds=1))
    assert restarted["window_start"] == plan.iso(T0 + 2 * H - timedelta(seconds=1))
    assert restarted["page_token"] is None and restarted["restarts"] == 1
    assert restarted["window_end"] == ckpt["window_end"]


def test_expired_token_restarts_whole_window_when_pages_were_unsorted():
    ckpt = plan.open_window(sweep(), plan.Window(T0, T0 + 5 * H), now=T0)
    ckpt, _ = plan.record_page(
        ckpt, updated_times=[T0 + 3 * H], next_token="t", echoed_end=None, now=T0, lookback=LOOKBACK
    )
    ckpt, _ = plan.record_page(
        ckpt, updated_times=[T0 + H], next_token="u", echoed_end=None, now=T0, lookback=LOOKBACK
    )
    assert ckpt["window_ordered"] is False
    once = plan.restart_window(ckpt, now=T0)
    assert (once["window_start"], once["window_end"]) == (plan.iso(T0), plan.iso(T0 + 5 * H))
    assert once["window_pages"] == 0 and once["pages"] == 2
    # A second restart of the same window halves it; the rest becomes the next window.
    twice = plan.restart_window({**once, "window_ordered": False}, now=T0)
    assert (twice["window_start"], twice["window_end"]) == (plan.iso(T0), plan.iso(T0 + 2.5 * H))
    twice, done = plan.record_page(
        twice, updated_times=[T0 + H], next_token=None, echoed_end=None, now=T0, lookback=LOOKBACK
    )
    assert done and twice["window_restarts"] == 0
    # The halved size carries over to the next window, and doubles after each window without restarts.
    assert twice["window_cap_seconds"] == 2.5 * 3600
    nxt = plan.next_window(twice, horizon=T0 + 50 * H, max_window=24 * H)
    assert (nxt.start, nxt.end) == (T0 + 2.5 * H - LOOKBACK, T0 + 5 * H - LOOKBACK)
    clean = plan.open_window(twice, nxt, now=T0)
    clean, _ = plan.record_page(
        clean, updated_times=[], next_token=None, echoed_end=None, now=T0, lookback=LOOKBACK
    )
    assert clean["window_cap_seconds"] == 5 * 3600


def test_echoed_window_end_bounds_the_cursor():
    ckpt = plan.open_window(backfill(end=T0 + 5 * H), plan.Window(T0, T0 + 5 * H), now=T0)
    ckpt, done = plan.record_page(
        ckpt, updated_times=[], next_token=None, echoed_end=T0 + 4 * H, now=T0, lookback=timedelta(0)
    )
    assert done and ckpt["cursor"] == plan.iso(T0 + 4 * H) and not ckpt["done"]
    w = plan.next_window(ckpt, horizon=T0 + 9 * H, max_window=24 * H)
    assert (w.start, w.end) == (T0 + 4 * H, T0 + 5 * H)


def test_should_start_fresh_rules():
    req = {"start_date": "2026-10-01T00:00:00Z"}
    ck = backfill()
    ck["requested"], ck["run_id"] = req, "r1"
    assert plan.should_start_fresh(None, mode="sweep", requested={}, run_id="r")[0]
    assert not plan.should_start_fresh(sweep(), mode="sweep", requested={"x": 1}, run_id="r")[0]
    assert not plan.should_start_fresh(ck, mode="backfill", requested=req, run_id="r2")[0]
    assert plan.should_start_fresh(ck, mode="backfill", requested={"start_date": "x"}, run_id="r1")[0]
    ck["done"] = True
    assert not plan.should_start_fresh(ck, mode="backfill", requested=req, run_id="r1")[0]
    assert plan.should_start_fresh(ck, mode="backfill", requested=req, run_id="r2")[0]
    with pytest.raises(ValueError, match="version"):
        plan.check_version({**ck, "version": 99})


def test_eta_from_covered_share_of_window():
    ckpt = plan.open_window(sweep(), plan.Window(T0, T0 + 4 * H), now=T0)
    ckpt, _ = plan.record_page(
        ckpt, updated_times=[T0 + H], next_token="t", echoed_end=None, now=T0, lookback=LOOKBACK
    )
    assert plan.estimate_remaining_pages(ckpt) == 3
    # 3 pages, 1 token in the bucket, 0.0056/s: the other 2 pages wait about 6 minutes
    assert plan.describe_eta(3, tokens=1.0, rate=0.0056) == "about 3 pages left (~6 min at the current rate)"
    assert plan.describe_eta(1, tokens=5.0, rate=0.0056) == "about 1 page left (~0 s at the current rate)"
    assert plan.describe_eta(None, tokens=0, rate=1) == "pages left unknown yet"


def test_eta_from_density_counts_down_and_never_pretends():
    """Unsorted pages: the estimate comes from the density of finished windows. It counts down page by
    page, and once the window holds more orders than that density predicts it says "unknown" instead of
    repeating "1 page left" (seen under a real scheduler while five pages remained)."""
    ckpt = backfill(end=T0 + 20 * H)
    first = plan.next_window(ckpt, horizon=T0 + 20 * H, max_window=10 * H)
    ckpt = plan.open_window(ckpt, first, now=T0)
    ckpt, done = plan.record_page(
        ckpt, updated_times=[T0 + 5 * H] * 1000, next_token=None, echoed_end=None, now=T0, lookback=LOOKBACK
    )  # a finished window: 1000 orders in 10 h
    assert done
    second = plan.next_window(ckpt, horizon=T0 + 20 * H, max_window=10 * H)
    ckpt = plan.open_window(ckpt, second, now=T0)
    left = []
    for page in range(12):  # pages come unsorted: the last committed time goes back and forth
        times = [T0 + (15 - (page % 2)) * H] * 100
        ckpt, _ = plan.record_page(
            ckpt, updated_times=times, next_token=f"t{page}", echoed_end=None, now=T0, lookback=LOOKBACK
        )
        left.append(plan.estimate_remaining_pages(ckpt))
    assert not ckpt["window_ordered"]
    assert left[0] == 1  # one page, sorted so far, covering half the window: one more like it
    assert left[1:9] == [8, 7, 6, 5, 4, 3, 2, 1]  # unsorted from page 2: 1000 expected - 100 per page
    assert left[9:] == [None, None, None]  # busier than the density says: unknown, not "1 page"


def test_settings_come_from_the_connection_and_name_the_fix():
    common = {
        "conn_id": "sp_api_default",
        "seller_id": "A1SANDBOXSELLERNA",
        "api_version": "v0",
        "connection_marketplace_ids": ("ATVPDKIKX0DER", "A2EUQ1WTGCTBG2"),
        "min_before_lag_seconds": 120.0,
        "marketplace_ids": None,
        "updated_after": "2026-09-01",
        "updated_before": None,
        "window_days": "7",
        "lookback_minutes": 5,
        "max_pages": "None",
        "time_budget_seconds": "780",
        "now": T0,
    }
    s = plan.plan_settings(mode="Backfill", **common)
    assert (s.mode, s.api_version, s.seller_id) == ("backfill", "v0", "A1SANDBOXSELLERNA")
    assert s.marketplace_ids == ("A2EUQ1WTGCTBG2", "ATVPDKIKX0DER")  # the connection's, sorted
    assert s.horizon == T0 - timedelta(seconds=122) and s.lookback == timedelta(0)  # backfills do not overlap
    assert (s.window, s.max_pages, s.time_budget) == (timedelta(days=7), None, 780.0)
    assert s.key == plan.checkpoint_key("sp_api_default", list(s.marketplace_ids), "backfill")
    assert s.with_horizon(T0).horizon == T0 and s.with_horizon(None) is s
    for change, match in (
        ({"mode": "history"}, "mode must be"),
        ({"mode": "backfill", "updated_after": None}, "needs a start date"),
        ({"mode": "sweep", "window_days": 0}, "window_days must be positive"),
        ({"mode": "sweep", "window_days": 0.005, "lookback_minutes": 5}, "less than half"),
        ({"mode": "sweep", "max_pages": "many"}, "max_pages must be a number"),
        ({"mode": "sweep", "connection_marketplace_ids": ()}, "no marketplace ids"),
        ({"mode": "backfill", "updated_after": "2026-10-02"}, "must be before end date"),
    ):
        with pytest.raises(ValueError, match=match):
            plan.plan_settings(**{**common, **change})


def test_memory_store_round_trip_is_readable_json():
    store = MemoryCheckpointStore()
    ck = sweep()
    store.save("k", ck)
    assert store.load("k") == ck
    assert json.loads(store.data["k"]) == ck and "\n  " in store.data["k"]
    store.delete("k")
    store.delete("k")
    assert store.load("k") is None


@settings(max_examples=200, deadline=None)
@given(
    sizes=st.lists(st.integers(min_value=0, max_value=250), min_size=1, max_size=12),
    expire_after=st.lists(st.integers(min_value=1, max_value=30), max_size=6),
    sorted_by_updated=st.booleans(),
    seed=st.integers(min_value=0, max_value=1000),
)
def test_simulated_sync_loses_nothing(sizes, expire_after, sorted_by_updated, seed):
    """Drive the planner against a fake paged API with token expiries: every order is read.

    The fake pages either by lastUpdatedTime or in a fixed shuffled ("by creation") order.
    """
    import random

    orders = sorted(T0 + timedelta(minutes=3 * i) for i in range(sum(sizes)))
    paging_order = list(orders)
    if not sorted_by_updated:
        random.Random(seed).shuffle(paging_order)
    end = T0 + timedelta(minutes=3 * len(orders) + 1)
    ckpt = backfill(end=end)
    got: set[datetime] = set()
    expiries = list(expire_after)
    calls = 0
    while (w := plan.next_window(ckpt, horizon=end, max_window=timedelta(hours=7))) is not None:
        if not w.resumed:
            ckpt = plan.open_window(ckpt, w, now=T0)
        in_window = [t for t in paging_order if w.start <= t < w.end]
        offset = int(w.page_token or 0)
        while True:
            calls += 1
            assert calls < 10_000
            if expiries and calls % (expiries[0] + 1) == 0 and offset:
                expiries.pop(0)
                ckpt = plan.restart_window(ckpt, now=T0)
                break
            page = in_window[offset : offset + 100]
            got.update(page)
            offset += len(page)
            token = str(offset) if offset < len(in_window) else None
            ckpt, done = plan.record_page(
                ckpt, updated_times=page, next_token=token, echoed_end=w.end, now=T0, lookback=timedelta(0)
            )
            if done:
                break
    assert got == set(orders)
    assert ckpt["done"]


def test_first_sweep_starts_where_a_finished_backfill_ended():
    """The first sweep after a backfill neither re-reads its last day (12 scarce calls for 10k orders in
    60 days) nor leaves a gap; without a finished backfill it starts one day back."""
    now = T0 + 30 * H
    done = {**backfill(end=T0 + 10 * H), "done": True, "last_window_end": plan.iso(T0 + 10 * H)}
    assert plan.first_sweep_cursor(done, now=now, lookback=LOOKBACK)[0] == T0 + 10 * H - LOOKBACK
    running = {**done, "done": False}
    for ckpt in (None, running):
        assert plan.first_sweep_cursor(ckpt, now=now, lookback=LOOKBACK)[0] == now - plan.DEFAULT_SWEEP_START

"""Property tests of the token-bucket maths every backend implements (hypothesis)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from selling_partner.hooks.ratelimit import BucketState, reserve

rates = st.floats(min_value=0.001, max_value=50, allow_nan=False)
bursts = st.integers(min_value=1, max_value=40)
gaps = st.lists(st.floats(min_value=0, max_value=5, allow_nan=False), min_size=1, max_size=200)
waits = st.lists(st.sampled_from([0.0, 0.5, 3.0, float("inf")]), min_size=200, max_size=200)


@settings(max_examples=300, deadline=None)
@given(rate=rates, burst=bursts, gaps=gaps, max_waits=waits)
def test_reservations_never_exceed_burst_plus_rate_times_t(rate, burst, gaps, max_waits) -> None:
    """Whatever the arrival pattern: calls sent at (reservation time + wait) fit B + r*T in every span."""
    state = BucketState(float(burst), rate, float(burst), 0.0)
    now = 0.0
    sends: list[float] = []
    for gap, max_wait in zip(gaps, max_waits, strict=False):
        now += gap
        state, granted, wait = reserve(state, now, max_wait=max_wait)
        assert wait >= 0
        if granted:
            sends.append(now + wait)
        else:
            assert wait > max_wait  # refused only when the wait is too long
    sends.sort()
    for i in range(len(sends)):
        for j in range(i, len(sends)):
            assert j - i + 1 <= burst + rate * (sends[j] - sends[i]) + 1e-6


@settings(max_examples=200, deadline=None)
@given(rate=rates, burst=bursts, n=st.integers(min_value=1, max_value=100))
def test_reservations_are_served_in_order(rate, burst, n) -> None:
    """Callers arriving together get non-decreasing waits, each 1/rate after the previous once empty."""
    state = BucketState(float(burst), rate, float(burst), 0.0)
    previous = -1.0
    for k in range(n):
        state, granted, wait = reserve(state, 0.0, max_wait=float("inf"))
        assert granted and wait >= previous
        if k >= burst:
            assert abs(wait - (k - burst + 1) / rate) <= 1e-6 * max(1.0, wait)
        previous = wait

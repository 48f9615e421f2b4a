"""The enrichment with ``include_pii`` and no PII key connection fails before any getOrder call: the
queued orders stay queued and no buyer row is written (tests/warehouse/test_pii.py has the rest)."""

from __future__ import annotations

import pytest

from tests.fixtures.warehouse import PII_KEY_ENV

pytestmark = pytest.mark.integration


def test_enrichment_with_pii_and_no_key_fails_before_fetching(event_path, monkeypatch):
    from selling_partner.warehouse import pii

    env = event_path(
        {"sp_api_default": {"orders": 5}}, backend="sqlite", extra={"sp_api_default": {"include_pii": True}}
    )
    env.seller.advance(new_orders=3, changes=0)
    env.run_events()
    wh = env.warehouse()
    queued = sum(n for n, _ in wh.enrichment_backlog().values())
    assert queued >= 3
    monkeypatch.delenv(PII_KEY_ENV)
    env.run_enrich(expect="failed")
    assert env.seller.calls("getOrder")["calls"] == 0
    assert sum(n for n, _ in wh.enrichment_backlog().values()) == queued
    assert wh.fetch_buyers(decrypt=False) == []
    with pytest.raises(pii.PiiKeyError, match="sp_api_pii_key"):
        wh.pii_cipher()

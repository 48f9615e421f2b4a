"""Fault campaigns (issue 14): chaos, crash, bad input, secrets and PII; each prints its figures.

Every campaign is seeded and repeatable. The figures (runs, faults injected, rows compared, lost,
duplicated, leaked) are recorded with the ``campaign`` fixture (tests/fixtures/campaign.py) and
printed as one table at the end of the session.
"""

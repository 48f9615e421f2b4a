"""Orders API adapters (v2026-01-01 and v0) and the canonical order record they produce."""

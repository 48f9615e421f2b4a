"""The one rule for text values the warehouse stores (both backends, applied when rows are built).

* ``NUL`` (U+0000) is removed. It is valid unicode, but PostgreSQL ``text`` cannot hold it (COPY would
  fail the whole batch) and SQLite's C functions stop at it; no SP-API field means anything by it.
* A lone surrogate (U+D800-U+DFFF, e.g. from a broken ``\\ud83d`` JSON escape) becomes U+FFFD: it is not
  unicode, cannot be encoded as UTF-8 and would fail the batch on either backend.

Everything else round-trips exactly: no normalisation (NFC/NFKC), no trimming, no length limit, so emoji
ZWJ sequences, combining marks, right-to-left text, non-BMP characters and zero-width spaces are kept
as received.
"""

from __future__ import annotations

import re

_SURROGATE_RE = re.compile("[\ud800-\udfff]")
#: Longest one-line text (quarantine ``reason``, sync-run ``error``) kept.
MAX_LINE_CHARS = 500


def clean_text(value: str | None) -> str | None:
    """``value`` without NUL characters and with lone surrogates replaced by U+FFFD (None stays None)."""
    # Fast path: ASCII text without NUL (nearly every value) is returned as is.
    if value is None or ("\x00" not in value and value.isascii()):
        return value
    value = value.replace("\x00", "")
    if not value.isascii():
        value = _SURROGATE_RE.sub("\ufffd", value)
    return value


def one_line(text: str, limit: int = MAX_LINE_CHARS) -> str:
    """The first non-empty line of ``text``, cleaned, stripped and cut to ``limit`` characters."""
    for line in (clean_text(text) or "").splitlines():
        if line.strip():
            return line.strip()[:limit]
    return ""

"""Buyer PII at rest: the PII columns of ``sp_order_buyers`` are Fernet tokens, never plaintext.

Amazon's Data Protection Policy asks for buyer PII to be encrypted at rest. Every PII column of
``sp_order_buyers`` (:data:`PII_COLUMNS`: names, e-mail, company, purchase order number, the address
lines, city, region, postal code, country, phone) is stored as a Fernet token (AES-128-CBC with an
HMAC-SHA256, from ``cryptography``); ``order_id`` and the two times stay clear so the upsert and the
retention purge work in SQL. A NULL stays NULL.

The key lives in an Airflow connection, never in the warehouse: by default ``sp_api_pii_key`` (its id
can be changed with ``$SP_API_PII_KEY_CONN_ID``), whose **password** holds one or more Fernet keys
separated by commas or whitespace, the current key first. New values are encrypted with the first
key; every listed key decrypts (``MultiFernet``), so a key is rotated by putting the new key first,
calling :meth:`Warehouse.rotate_pii_key` (re-encrypts every row with it) and then dropping the old one.

Who may read the PII is who may read that connection: :func:`read_buyers` (or
``Warehouse.fetch_buyers()``, which decrypts with the same key) returns the decrypted rows; the raw
table shows tokens only. Without the key connection, writing or reading buyer rows fails with
:class:`PiiKeyError` naming the fix - PII is never written in clear.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from .schema import BUYERS_TABLE

DEFAULT_KEY_CONN_ID = "sp_api_pii_key"
KEY_CONN_ID_ENV = "SP_API_PII_KEY_CONN_ID"

#: The encrypted columns of ``sp_order_buyers`` (all but the key and the two times).
PII_COLUMNS: tuple[str, ...] = tuple(
    c for c in BUYERS_TABLE.column_names if c not in ("order_id", "order_last_updated_time", "loaded_at")
)
#: Their positions in a ``sp_order_buyers`` row tuple.
PII_POSITIONS: tuple[int, ...] = tuple(BUYERS_TABLE.column_names.index(c) for c in PII_COLUMNS)

_KEY_SPLIT = re.compile(r"[\s,]+")


class PiiKeyError(RuntimeError):
    """The PII key connection is missing, empty or invalid, or a stored value does not decrypt with it."""


def key_conn_id() -> str:
    """The id of the Airflow connection holding the PII key(s): ``$SP_API_PII_KEY_CONN_ID`` or
    ``sp_api_pii_key``."""
    return os.environ.get(KEY_CONN_ID_ENV, "").strip() or DEFAULT_KEY_CONN_ID


def generate_key() -> str:
    """A new random Fernet key (url-safe base64 text) to put in the key connection's password."""
    return Fernet.generate_key().decode("ascii")


def _fix(conn_id: str) -> str:
    return (
        f"Create the Airflow connection {conn_id!r} (type generic) whose password is a Fernet key "
        "(python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'), "
        f"or name another connection in ${KEY_CONN_ID_ENV}, or switch include_pii off"
    )


class PiiCipher:
    """Encrypts with the first key, decrypts with any of them. Never logs or shows a key or a value."""

    def __init__(self, keys: Sequence[str | bytes], *, conn_id: str = "") -> None:
        if not keys:
            raise PiiKeyError(f"PII key connection {conn_id!r} holds no key. {_fix(conn_id)}")
        fernets = []
        for n, key in enumerate(keys, 1):
            try:
                fernets.append(Fernet(key))
            except (ValueError, TypeError):
                raise PiiKeyError(
                    f"PII key #{n} of connection {conn_id!r} is not a Fernet key (32 url-safe base64-encoded "
                    f"bytes). {_fix(conn_id)}"
                ) from None
        self.conn_id = conn_id
        self.key_count = len(fernets)
        self._fernet = MultiFernet(fernets)

    def __repr__(self) -> str:
        return f"PiiCipher(conn_id={self.conn_id!r}, keys={self.key_count})"

    def encrypt(self, value: str | None) -> str | None:
        """A Fernet token for ``value`` (with the current key); None stays None."""
        if value is None:
            return None
        return self._fernet.encrypt(value.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str | None, *, where: str = "") -> str | None:
        """The plaintext of ``token``; :class:`PiiKeyError` (naming ``where``, never the value) if no key
        decrypts it."""
        if token is None:
            return None
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeEncodeError):
            raise PiiKeyError(
                f"{where or 'a PII value'} does not decrypt with the key(s) of connection {self.conn_id!r}: "
                "a wrong key, or a key rotated out too early (list the previous key after the current one "
                "in the connection's password), or a value not written by this package"
            ) from None

    def rotate(self, token: str | None, *, where: str = "") -> str | None:
        """``token`` re-encrypted with the current key (None stays None)."""
        if token is None:
            return None
        try:
            return self._fernet.rotate(token.encode("ascii")).decode("ascii")
        except (InvalidToken, UnicodeEncodeError):
            self.decrypt(token, where=where)  # raises the explained error
            raise

    def encrypt_row(self, row: Sequence[Any]) -> tuple[Any, ...]:
        """A ``sp_order_buyers`` row tuple with its PII columns encrypted."""
        out = list(row)
        for i in PII_POSITIONS:
            out[i] = self.encrypt(out[i])
        return tuple(out)

    def encrypt_rows(self, rows: Iterable[Sequence[Any]]) -> list[tuple[Any, ...]]:
        return [self.encrypt_row(r) for r in rows]

    def decrypt_record(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """A fetched ``sp_order_buyers`` row (dict) with its PII columns decrypted."""
        out = dict(record)
        for c in PII_COLUMNS:
            if c in out:
                out[c] = self.decrypt(out[c], where=f"sp_order_buyers {out.get('order_id')}: {c}")
        return out


def split_keys(secret: str | None) -> list[str]:
    """The keys listed in a key connection's password (commas or whitespace between them)."""
    return [k for k in _KEY_SPLIT.split(secret or "") if k]


def load_cipher(conn_id: str | None = None) -> PiiCipher:
    """The cipher of the key connection ``conn_id`` (default :func:`key_conn_id`), or :class:`PiiKeyError`
    naming the fix when the connection is missing or holds no valid key."""
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    conn_id = conn_id or key_conn_id()
    try:
        conn = BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        raise PiiKeyError(
            f"Buyer PII is encrypted at rest with a key held in Airflow connection {conn_id!r}, which "
            f"does not exist. {_fix(conn_id)}."
        ) from None
    return PiiCipher(split_keys(conn.password), conn_id=conn_id)


def read_buyers(
    warehouse_conn_id: str = "warehouse_default",
    *,
    key_conn_id: str | None = None,
    where: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Decrypted ``sp_order_buyers`` rows (by order_id) for the people allowed to read the key connection.

    ``where`` filters on clear columns (``{"order_id": "..."}``). Raises :class:`PiiKeyError` when the
    key connection is missing or its keys do not decrypt the stored values.
    """
    from . import get_warehouse

    wh = get_warehouse(warehouse_conn_id)
    return wh.fetch_buyers(where, cipher=load_cipher(key_conn_id))


__all__ = [
    "DEFAULT_KEY_CONN_ID",
    "KEY_CONN_ID_ENV",
    "PII_COLUMNS",
    "PiiCipher",
    "PiiKeyError",
    "generate_key",
    "key_conn_id",
    "load_cipher",
    "read_buyers",
    "split_keys",
]

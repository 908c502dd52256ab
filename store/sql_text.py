"""SQL literals rendered by hand.

Query parameters differ between clickhouse-driver (which sends lists as arrays that ClickHouse 18.16
rejects in ``IN``) and chdb (which takes none), so the few values that go into queries are quoted here,
once, for both."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

_ESCAPES = str.maketrans({"\\": "\\\\", "'": "\\'", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\0": "\\0"})


def quote(value: str) -> str:
    return "'" + value.translate(_ESCAPES) + "'"


def in_list(values: Iterable[str]) -> str:
    """``('a', 'b')``; an empty list becomes a tuple that matches nothing rather than a syntax error."""
    quoted = [quote(v) for v in values]
    return "(" + ", ".join(quoted) + ")" if quoted else "('')"


def utc_text(ts: datetime) -> str:
    """``YYYY-MM-DD hh:mm:ss`` in UTC: what a ``DateTime('UTC')`` column reads on every server version."""
    return ts.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def datetime_literal(ts: datetime) -> str:
    return f"toDateTime({quote(utc_text(ts))}, 'UTC')"

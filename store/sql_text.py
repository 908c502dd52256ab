"""SQL literals rendered by hand.

Query parameters differ between clickhouse-driver (which sends lists as arrays that ClickHouse 18.16
rejects in ``IN``) and chdb (which takes none), so the few values that go into queries are quoted here,
once, for both."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

# What a DateTime('UTC') column can hold (it ends on 2106-02-07). A bound outside is clamped to this range:
# it selects the same rows, and a query never carries a date the server would wrap around or refuse.
STORE_MIN = datetime(1970, 1, 1, tzinfo=UTC)
STORE_MAX = datetime(2105, 12, 31, 23, 59, 59, tzinfo=UTC)

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


def clamp_to_store(ts: datetime) -> datetime:
    """The instant itself, or the nearest one a DateTime column holds (comparing aware instants never
    overflows, converting year 1 at +14:00 to UTC would)."""
    return STORE_MIN if ts < STORE_MIN else STORE_MAX if ts > STORE_MAX else ts


def datetime_literal(ts: datetime) -> str:
    """A bound for a ``DateTime('UTC')`` column, clamped to the range the column holds."""
    return f"toDateTime({quote(utc_text(clamp_to_store(ts)))}, 'UTC')"

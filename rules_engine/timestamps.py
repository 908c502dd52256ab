"""Event-time parsing. Rules never read the wall clock, so every instant comes through here."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

_DURATION = re.compile(r"^([1-9][0-9]*)([smhd])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_timestamp(value: object) -> datetime:
    """Parse an RFC 3339 instant; an instant without an offset is ambiguous, so it is refused."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"not an RFC 3339 timestamp: {value!r}") from None
    else:
        raise ValueError(f"must be an RFC 3339 string, not {type(value).__name__}")
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValueError(f"timestamp {value!s} has no UTC offset")
    return parsed


def parse_duration(value: object) -> timedelta:
    """Parse the licence duration form (``90s``, ``15m``, ``24h``, ``30d``)."""
    if not isinstance(value, str):
        raise ValueError(f"duration must be a string like '24h', not {value!r}")
    match = _DURATION.match(value.strip())
    if not match:
        raise ValueError(f"bad duration {value!r}: use a positive whole number with s, m, h or d")
    return timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2)])


def format_timestamp(value: datetime) -> str:
    """Keep the offset the event was written with, so findings read like the source data."""
    return value.isoformat()

"""Event-time parsing. Rules never read the wall clock, so every instant comes through here."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone, tzinfo

_DURATION = re.compile(r"^([1-9][0-9]*)([smhd])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# One tzinfo object per offset: aware datetimes sharing a tzinfo compare field by field, without calling
# utcoffset() on both sides, and the engine compares timestamps on every event. Keyed by the timezone objects
# fromisoformat returns (a new one per call; equal when their offsets are).
_ZONES: dict[tzinfo, tzinfo] = {}


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
    tz = parsed.tzinfo
    if type(tz) is timezone:
        # What fromisoformat gives: a fixed offset. Swap in the shared object for that offset; combine() is
        # several times cheaper than replace(tzinfo=...), and this runs once per event.
        zone = _ZONES.get(tz)
        if zone is None:
            fixed = tz.utcoffset(None)
            zone = _ZONES[tz] = UTC if not fixed else timezone(fixed)
        return parsed if tz is zone else datetime.combine(parsed, parsed.time(), zone)
    offset = parsed.utcoffset() if tz is not None else None
    if offset is None:
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


def parse_lateness(value: object) -> timedelta:
    """A licence's allowed lateness: a duration, or zero (``0s``) for input that is known to arrive in order."""
    if isinstance(value, str) and value.strip() in {"0", "0s", "0m", "0h", "0d"}:
        return timedelta(0)
    if value == 0 and not isinstance(value, bool):
        return timedelta(0)
    return parse_duration(value)


def format_timestamp(value: datetime) -> str:
    """Keep the offset the event was written with, so findings read like the source data."""
    return value.isoformat()

"""Event-time parsing. Rules never read the wall clock, so every instant comes through here."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone, tzinfo

from sandboxwatch.rules_engine.plain_text import plain

_DURATION = re.compile(r"^([1-9][0-9]*)([smhd])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# One tzinfo object per offset: aware datetimes sharing a tzinfo compare field by field, without calling
# utcoffset() on both sides, and the engine compares timestamps on every event. Keyed by the timezone objects
# fromisoformat returns (a new one per call; equal when their offsets are).
_ZONES: dict[tzinfo, tzinfo] = {}
# Bounds (docs/events.md): a local year in 1970..2199 and an offset of whole minutes within +-14:00 keep
# every instant far from datetime's year 1..9999 edges, where converting "0001-01-01T00:00+14:00" to UTC
# for a comparison raises OverflowError. Whole minutes also bound the zone cache to 1,681 entries.
MIN_YEAR, MAX_YEAR = 1970, 2199
MAX_OFFSET = timedelta(hours=14)
MAX_TEXT = 64
MAX_DURATION = timedelta(days=3650)
# Fractional seconds past the sixth digit: datetime holds microseconds, and fromisoformat drops the rest
# without a word ("...00.123456789" becomes ".123456"). Zeros there change nothing; any other digit would
# move the instant, so it is refused (docs/events.md, Bounds).
_SUB_MICROSECOND = re.compile(r"[.,][0-9]{6}([0-9]+)")
# The RFC 3339 form itself (a space for the T, as RFC 3339 section 5.6 allows). fromisoformat reads more than
# RFC 3339: ISO week dates (2025-W46-1), the basic form (20251110T120000+0700), an hour alone (T12+07:00), an
# offset of hours alone (+07) and a comma for the point; the contract is RFC 3339 (docs/events.md), and every
# other reader of a stored text (ClickHouse's for dead letters, a participant's tools) must read the same instant.
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?(?:Z|[+-][0-9]{2}:[0-9]{2})"
)


def shared_zone(offset: timedelta, name: str | None = None) -> tzinfo:
    """The parser's tzinfo object for a fixed offset. Unpickling calls ``timezone(offset)`` for every zone in
    a pickle, which makes new objects that compare the slow way with every parsed event's; a loader that takes
    this instead (rules_engine/zone_sharing_pickle.py) gives restored times the parser's own objects."""
    if name is not None or offset % timedelta(minutes=1) or abs(offset) > MAX_OFFSET:
        return timezone(offset) if name is None else timezone(offset, name)  # not one the parser makes
    probe = timezone(offset)
    zone = _ZONES.get(probe)
    if zone is None:
        zone = _ZONES[probe] = UTC if not offset else probe
    return zone


def is_rfc3339(text: str) -> bool:
    """Whether a text has the RFC 3339 form (whatever its year): for a reader that clamps an out-of-range
    instant rather than refusing it, which must still refuse the other forms fromisoformat reads."""
    return _RFC3339.fullmatch(text) is not None


def parse_timestamp(value: object) -> datetime:
    """Parse an RFC 3339 instant; an instant without an offset is ambiguous, so it is refused."""
    parsed = _parse_instant(value)
    if type(value) is str and not _RFC3339.fullmatch(value):  # after the bounds, whose reasons are sharper
        raise ValueError(
            f"not an RFC 3339 timestamp: {value!r} (the form is YYYY-MM-DDTHH:MM:SS, optionally .ffffff, "
            "then Z or +HH:MM/-HH:MM)"
        )
    return parsed


# The canonical shapes of an event's timestamp: RFC 3339 with a T, whole seconds or 1 to 6 fractional digits,
# and Z or an offset of hours and minutes, each D an ASCII digit. Judged on the text's bytes with every digit
# mapped to D: one C call per byte, where a regular expression costs several times more.
_DIGITS_AS_D = bytes.maketrans(b"0123456789", b"DDDDDDDDDD")
_CANONICAL = frozenset(
    f"DDDD-DD-DDTDD:DD:DD{fraction}{zone}".encode()
    for fraction in ("", *("." + "D" * places for places in range(1, 7)))
    for zone in ("Z", "+DD:DD", "-DD:DD")
)
_LONGEST_CANONICAL = max(map(len, _CANONICAL))


def canonical_timestamp(value: object) -> datetime | None:
    """``parse_timestamp(value)`` for a text of a canonical shape (``_CANONICAL``), or None for anything
    else, left to ``parse_timestamp`` (the parser's fast path, rules_engine/event_fast_path.py). Never
    raises. The shape implies every check of the generic parse but the calendar's (fromisoformat's, the
    same call), the year's and the offset's range: the zone is the one the generic parse keeps for that
    offset, and an offset it has not seen yet is left to it (which then keeps its zone, or refuses it)."""
    if (
        type(value) is not str
        or len(value) > _LONGEST_CANONICAL
        or not value.isascii()
        or value.encode().translate(_DIGITS_AS_D) not in _CANONICAL
    ):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    zone = _ZONES.get(parsed.tzinfo)  # type: ignore[arg-type]  # the shape holds an offset
    if zone is None or not MIN_YEAR <= parsed.year <= MAX_YEAR:
        try:
            return parse_timestamp(value)
        except ValueError:
            return None
    return parsed if parsed.tzinfo is zone else datetime.combine(parsed, parsed.time(), zone)


def _parse_instant(value: object) -> datetime:
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        if len(value) > MAX_TEXT:
            raise ValueError(f"a timestamp of {len(value)} characters is longer than {MAX_TEXT}")
        if "\x00" in value:  # CPython's fromisoformat stops at a NUL: "...Z\x00garbage" would parse
            raise ValueError(f"not an RFC 3339 timestamp: {value!r} (it holds a NUL character)")
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError as exc:
            reason = "UTC offset out of range" if "timedelta" in str(exc) else str(exc)  # no Python reprs
            raise ValueError(f"not an RFC 3339 timestamp: {value!r} ({reason})") from None
        point = value.find(".") if "," not in value else value.find(",")
        if point > 0 and value[point + 7 : point + 8].isdigit() and _finer_than_microseconds(value):
            raise ValueError(
                f"{value!r} is more precise than a microsecond (more than 6 fractional digits, not all zeros "
                "after the sixth): at most 6 are held, and dropping the rest would move the instant"
            )
    else:
        raise ValueError(f"must be an RFC 3339 string, not {type(value).__name__}")
    if not MIN_YEAR <= parsed.year <= MAX_YEAR:
        raise ValueError(f"year {parsed.year} is outside {MIN_YEAR}..{MAX_YEAR}")
    tz = parsed.tzinfo
    if type(tz) is timezone:
        # What fromisoformat gives: a fixed offset. Swap in the shared object for that offset; combine() is
        # several times cheaper than replace(tzinfo=...), and this runs once per event.
        zone = _ZONES.get(tz)
        if zone is None:
            fixed = tz.utcoffset(None)
            _check_offset(fixed, value)
            zone = _ZONES[tz] = UTC if not fixed else timezone(fixed)
        return parsed if tz is zone else datetime.combine(parsed, parsed.time(), zone)
    try:
        offset = parsed.utcoffset() if tz is not None else None
    except (ValueError, OverflowError) as exc:
        raise ValueError(f"timestamp {value!s} has no usable UTC offset ({exc})") from None
    if offset is None:
        raise ValueError(f"timestamp {value!s} has no UTC offset")
    _check_offset(offset, value)
    return parsed


def _finer_than_microseconds(value: str) -> bool:
    finer = _SUB_MICROSECOND.search(value)
    return finer is not None and bool(finer.group(1).strip("0"))


def _check_offset(offset: timedelta, value: object) -> None:
    if abs(offset) > MAX_OFFSET or offset % timedelta(minutes=1):
        raise ValueError(f"UTC offset of {value!s} must be whole minutes within -14:00..+14:00")


def parse_duration(value: object) -> timedelta:
    """Parse the licence duration form (``90s``, ``15m``, ``24h``, ``30d``)."""
    if not isinstance(value, str):
        raise ValueError(f"duration must be a string like '24h', not {plain(value)}")
    match = _DURATION.match(value.strip()) if len(value) <= MAX_TEXT else None
    if not match:
        raise ValueError(f"bad duration {value[:MAX_TEXT]!r}: use a positive whole number with s, m, h or d")
    count = match.group(1)
    seconds = int(count) * _UNIT_SECONDS[match.group(2)] if len(count) <= 12 else None
    if seconds is None or seconds > MAX_DURATION.total_seconds():
        raise ValueError(f"duration {plain(value)} is longer than {MAX_DURATION.days} days")
    return timedelta(seconds=seconds)


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

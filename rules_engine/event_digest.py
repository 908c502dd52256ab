"""A short, stable digest of what an event says, to tell a re-delivery from a conflicting duplicate.

The same ``event_id`` delivered twice is normally the same event sent again (a replay, a retry) and is
counted once. Two events sharing an id but saying different things are not a re-delivery: one of them
would be lost without a word, so the engine keeps a digest per id and reports a conflict instead.

An event read from a line (a file, a stream message, a stored event replayed) carries the CRC-32 of that
line: a re-delivery is the same bytes, and anything else under the same id, even the same content written
differently, is reported rather than assumed equal. That costs a fraction of a microsecond in the parser,
where formatting the typed event again would cost the engine two. An event built in code (the API's
pre-check body) has no line; it gets ``content_digest``: every field the events contract defines except
the id and participant (the duplicate's key) and unknown extras, text through CRC-32 and numbers and
aware datetimes through ``hash()``, which CPython computes from the value alone. Both are stable across
processes (engine state is snapshotted and restored elsewhere), unlike ``hash()`` of text, which is
salted per process. A digest of 0 (a snapshot from before digests) matches anything."""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Callable
from typing import Any

from sandboxwatch.rules_engine.events import Event

_LEFT_OUT = frozenset({"event_id", "participant", "extra", "digest"})
_NUMERIC = ("Decimal", "datetime", "int", "bool")
_DIGESTS: dict[type, Callable[[Any], int]] = {}


def _stable(value: object) -> object:
    # None's hash is its address (per process) before Python 3.12; 1j equals no field value.
    return 1j if value is None else value


def _party(party: Any) -> str:
    return "-" if party is None else f"{party.name!r}/{party.account!r}"


def _travel(info: Any) -> str:
    # The dataclasses' own repr is several times slower than the rest of the digest.
    return "None" if info is None else f"{_party(info.originator)}|{_party(info.beneficiary)}"


def _compile(cls: type) -> Callable[[Any], int]:
    texts: list[str] = []
    numbers: list[str] = []
    for field in dataclasses.fields(cls):
        if field.name in _LEFT_OUT:
            continue
        annotation = str(field.type)
        if any(annotation.startswith(kind) for kind in _NUMERIC):
            numbers.append(f"_stable(e.{field.name})" if "None" in annotation else f"e.{field.name}")
        elif annotation.startswith("TravelRuleInfo"):
            texts.append(f"{{_travel(e.{field.name})}}")
        else:  # text, lists of text: repr tells None from "None" and "a;b" from [a, b]
            texts.append(f"{{e.{field.name}!r}}")
    source = (
        "def digest(e):\n"
        f"    text = f{chr(31).join(texts)!r}\n"
        f"    return hash((_crc(text.encode('utf-8', 'surrogatepass')), {', '.join(numbers)}))\n"
    )
    namespace: dict[str, Any] = {"_crc": zlib.crc32, "_stable": _stable, "_travel": _travel}
    exec(compile(source, f"<digest of {cls.__name__}>", "exec"), namespace)  # our own field names, not input
    function: Callable[[Any], int] = namespace["digest"]
    _DIGESTS[cls] = function
    return function


def line_digest(text: str) -> int:
    """The digest of a parsed line (never 0, which means unknown)."""
    return zlib.crc32(text.encode("utf-8", "surrogatepass")) or 1


def bytes_digest(data: bytes) -> int:
    """``line_digest`` of the line whose UTF-8 is ``data`` (for a parser that has encoded it already)."""
    return zlib.crc32(data) or 1


def content_digest(event: Event) -> int:
    cls = type(event)
    digest = _DIGESTS.get(cls) or _compile(cls)
    return digest(event)

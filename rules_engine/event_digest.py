"""A short, stable digest of what an event says, to tell a re-delivery from a conflicting duplicate.

The same ``event_id`` delivered twice is normally the same event sent again (a replay, a retry) and is
counted once. Two events sharing an id but saying different things are not a re-delivery: one of them
would be lost without a word, so the engine keeps this digest per id and reports a conflict instead.

The digest covers every field the events contract defines (the typed attributes), not unknown extra
fields, which no rule reads and which connectors may stamp differently on each delivery. It must be stable
across processes (engine state is snapshotted and restored elsewhere), so it is not Python's ``hash()``,
which is salted per process for text."""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from operator import attrgetter
from typing import Any

from rules_engine.events import Event

# The id and participant are the duplicate's key, so they are equal by construction; extras are left out.
_LEFT_OUT = frozenset({"event_id", "participant", "extra"})
_GETTERS: dict[type, Callable[[Any], tuple[Any, ...]]] = {}


def _getter(cls: type) -> Callable[[Any], tuple[Any, ...]]:
    names = [f.name for f in dataclasses.fields(cls) if f.name not in _LEFT_OUT]
    getter = _GETTERS[cls] = attrgetter(*names)
    return getter


def content_digest(event: Event) -> int:
    """Text fields through CRC-32, everything else through its own hash, which CPython computes from the
    value alone for int, Decimal and aware datetime (the UTC instant: equal values say the same, 1.5 is
    1.50). Text hashes are salted per process, and None's is its address, so those are not hashed."""
    cls = type(event)
    getter = _GETTERS.get(cls) or _getter(cls)
    texts: list[str] = []
    others: list[object] = []
    for value in getter(event):
        kind = type(value)
        if kind is str:
            texts.append(value)
        elif value is None:
            texts.append("\x00")
        elif kind is Decimal or kind is int or kind is bool or kind is datetime:
            others.append(value)
        else:  # lists of names, travel-rule parties: rare, and their repr is plain text
            texts.append(repr(value))
    return hash((zlib.crc32("\x1f".join(texts).encode("utf-8", "surrogatepass")), *others))

"""Unpickling whose times carry the parser's shared tzinfo objects (timestamps.shared_zone).

An aware datetime compares field by field only with one of the same tzinfo object, and through utcoffset()
on both sides otherwise (about 15 times slower). Plain unpickling makes a new ``timezone`` for each pickle, so
a restored engine compared every new event with every stored time (its term, clock, rolling windows,
report deadlines) the slow way: measured 15-33% slower than the engine it was pickled from, until those
times aged out. Pickles are only ever read back by the code that wrote them (engine snapshots, the
self-check's sort runs), so the one class redirected is the standard library's own ``timezone``."""

from __future__ import annotations

import io
import pickle
from typing import IO, Any

from sandboxwatch.rules_engine.timestamps import shared_zone


class _ZoneSharingUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if module == "datetime" and name == "timezone":
            return shared_zone
        return super().find_class(module, name)


def loads(data: bytes) -> Any:
    return _ZoneSharingUnpickler(io.BytesIO(data)).load()


def load(stream: IO[bytes]) -> Any:
    return _ZoneSharingUnpickler(stream).load()

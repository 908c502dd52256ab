"""Nesting depth of JSON text, judged before decoding; objects that repeat a key, found while decoding.

json's C decoder recurses once per level and relies on the interpreter's recursion limit to stop. A library
that raises that limit (web3's py_ecc sets 100,000 on import) turns 100 kB of '[' into a C-stack overflow,
a segfault of the whole process, on any thread. So every place that decodes JSON from outside (event lines,
API bodies, Alertmanager posts) first counts brackets here, whatever the recursion limit is.

A key repeated in one object is legal JSON whose meaning is not: decoders silently keep the last value, so
``{"quantity": "1", "quantity": "900000"}`` says one thing to a reader that keeps the first and another to
us. ``unique_object`` (an ``object_pairs_hook``) marks such an object, and ``repeated_key`` finds the mark,
so the line is refused with the key named instead of being judged on a guess."""

from __future__ import annotations

import json
import re
from typing import Any

# A string, or an unclosed one running to the end of the text: every quote then starts a match that ends
# where the scan goes on, so the scan is linear. Requiring the closing quote made each unclosed quote rescan
# the rest of the text (one 1 MiB request body: hours, the event loop blocked before authentication).
_STRING = re.compile(r'"(?:[^"\\]++|\\.)*+(?:"|\\?\Z)', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")


def too_deep(text: str, limit: int) -> bool:
    """Whether the JSON text nests deeper than ``limit``. Brackets inside strings do not count; unbalanced
    text is left for the decoder to refuse."""
    depth = 0
    for bracket in _BRACKET.findall(_STRING.sub("", text)):
        if bracket in "[{":
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


class RepeatedKeys(dict[str, Any]):
    """A decoded JSON object in which a key appears more than once: each key keeps its first value, and
    ``repeated`` is the first key seen again."""

    __slots__ = ("repeated",)

    def __init__(self) -> None:
        super().__init__()
        self.repeated = ""


def unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``object_pairs_hook`` for ``json``: a plain dict, or a ``RepeatedKeys`` when a key repeats."""
    obj = dict(pairs)
    if len(obj) == len(pairs):
        return obj
    first = RepeatedKeys()
    for key, value in pairs:
        if key not in first:
            first[key] = value
        elif not first.repeated:
            first.repeated = key
    return first


def repeated_key(value: Any, path: str = "") -> str | None:
    """Where the first repeated key of a value decoded with ``unique_object`` is (``travel_rule.originator.
    name``, ``x[2].k``), or None. Depth is bounded before decoding."""
    if isinstance(value, dict):
        if type(value) is RepeatedKeys:
            return f"{path}{value.repeated}"
        for key, item in value.items():
            if isinstance(item, dict | list):
                found = repeated_key(item, f"{path}{key}.")
                if found is not None:
                    return found
    elif isinstance(value, list):
        stem = path[:-1] if path.endswith(".") else path
        for index, item in enumerate(value):
            if isinstance(item, dict | list):
                found = repeated_key(item, f"{stem}[{index}].")
                if found is not None:
                    return found
    return None


def repeated_key_reason(key: str) -> str:
    """The one wording of the refusal, wherever a repeated key is found (docs/events.md, Bounds)."""
    name = key.rsplit(".", 1)[-1]
    return f"the key {name!r} appears more than once in one object: which of its values is meant is ambiguous"


_BOUNDED = json.JSONDecoder(object_pairs_hook=unique_object)


def loads_bounded(data: bytes | str, limit: int) -> Any:
    """``json.loads`` that refuses (ValueError) text nesting deeper than ``limit`` before decoding it, and
    an object that repeats a key (naming it)."""
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    if too_deep(text, limit):
        raise ValueError(f"JSON nested deeper than {limit} levels")
    value = _BOUNDED.decode(text)
    where = repeated_key(value)
    if where is not None:
        raise ValueError(f"{where}: {repeated_key_reason(where)}")
    return value

"""Nesting depth of JSON text, judged before decoding.

json's C decoder recurses once per level and relies on the interpreter's recursion limit to stop. A library
that raises that limit (web3's py_ecc sets 100,000 on import) turns 100 kB of '[' into a C-stack overflow,
a segfault of the whole process, on any thread. So every place that decodes JSON from outside (event lines,
API bodies, Alertmanager posts) first counts brackets here, whatever the recursion limit is."""

from __future__ import annotations

import json
import re
from typing import Any

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
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


def loads_bounded(data: bytes | str, limit: int) -> Any:
    """``json.loads`` that refuses (ValueError) text nesting deeper than ``limit`` before decoding it."""
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    if too_deep(text, limit):
        raise ValueError(f"JSON nested deeper than {limit} levels")
    return json.loads(text)

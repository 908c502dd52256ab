"""The nesting pre-check every JSON reader runs first (event lines, stream messages, API bodies, Alertmanager
posts): right about depth whatever the strings hold, and linear on text built to make a scanner backtrack."""

from __future__ import annotations

import time

import pytest

from sandboxwatch.rules_engine.json_bounds import too_deep


@pytest.mark.parametrize(
    ("text", "deep"),
    [
        ('{"a": [[1]]}', False),
        ("[[[[[[[[[1]]]]]]]]]", True),  # nine levels, the limit is eight
        ('{"a": "[[[[[[[[[[[[", "b": 1}', False),  # brackets inside a string do not count
        ('{"a": "\\"[[[[[[[[[[", "b": 1}', False),  # nor after an escaped quote inside it
        ('{"a": "x\\\\"}' + "[" * 9, True),  # an escaped backslash ends before the quote: the string is closed
        ('{"a": "unclosed [[[[[[[[[[[[', False),  # an unclosed string hides the rest: the decoder refuses it
        ('[[[[[[[[[["', True),
    ],
)
def test_depth_counts_brackets_outside_strings_only(text: str, deep: bool) -> None:
    assert too_deep(text, 8) is deep


@pytest.mark.parametrize(
    "text",
    [
        '{"a":' + '"\\' * 500_000,  # quotes that never close, each escaped
        '"' + '\\"' * 500_000,
        '{"a":"' + '\\"' * 500_000 + "{" * 10,
        '"\\\n' * 300_000,
        '"' * 1_000_000,
    ],
    ids=["escaped-backslash-quotes", "escaped-quotes", "escaped-quotes-then-brackets", "backslash-newline", "quotes"],
)
def test_a_megabyte_built_to_backtrack_is_scanned_in_one_pass(text: str) -> None:
    """A hang guard, not a speed target: the quadratic scan took 23 s on 40 KB of this and hours on 1 MiB;
    a linear one takes milliseconds, so the bound below cannot fail on any machine that runs the suite."""
    started = time.monotonic()
    too_deep(text, 8)
    assert time.monotonic() - started < 10

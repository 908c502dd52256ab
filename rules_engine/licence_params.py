"""Reads one rule's parameters with messages that name the rule and the field, as regulators need."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sandboxwatch.rules_engine.event_parser import hidden_character, identifier_problem, unicode_problem
from sandboxwatch.rules_engine.events import EVENT_TYPES, TRANSACTION_TYPES, VALUE_BEARING
from sandboxwatch.rules_engine.money import ZERO, parse_event_decimal
from sandboxwatch.rules_engine.plain_text import plain
from sandboxwatch.rules_engine.timestamps import parse_duration

# Counts in a licence (accounts, events in a window, a day of the month) are far below a billion: a larger
# number is a typo or an attack, and would never be reached anyway (docs/licence.md).
MAX_COUNT = 1_000_000_000
# A licence's numbers are written as the events' are (money.parse_event_decimal): Decimal() reads '1_0' as 10
# and ' +5' as 5, and YAML 1.1's base-60 and hex forms reach here as text too (rules_engine/licence.py): a
# limit must mean what it shows.
_LICENCE_FORM = (
    "not a plain decimal number: {value} (ASCII digits with an optional leading '-', fraction and exponent; "
    "no '_', '+', blanks, base-60 like 3:20:00 or hex)"
)


def name_problem(text: str) -> str | None:
    """Why a name a licence lists is refused (empty, a control, bidirectional, blank or invisible character),
    with the reason text events get for the same character (rules_engine/event_parser.py), or None."""
    if not text:
        return "is empty"
    return unicode_problem(text) or hidden_character(text) or identifier_problem(text)


def show(value: object) -> str:
    """A value as quoted in a rejection, cut short: the message must name the problem, not echo a megabyte."""
    return plain(value)


class ParamError(ValueError):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


class ParamReader:
    """Tracks which keys a rule kind consumed, so a misspelt parameter is caught rather than ignored."""

    def __init__(self, raw: Mapping[str, Any], base_dir: Path | None = None) -> None:
        self._raw = raw
        self.used: set[str] = set()
        self.last: str | None = None  # the parameter being read, named if reading it fails unexpectedly
        # Files a rule names (address lists) are found next to the licence file.
        self.base_dir = base_dir or Path.cwd()

    def has(self, name: str) -> bool:
        self._not_empty(name)
        return self._raw.get(name) is not None

    def _not_empty(self, name: str) -> None:
        """A parameter written with no value (``max_step:``, ``applies_to: ~``, a template's unset variable)
        is refused, never taken for "not given": its default may check less than the author wrote."""
        if name in self._raw and self._raw[name] is None:
            self.used.add(name)
            raise ParamError(name, "given without a value (null): write the value, or leave the parameter out")

    def _get(self, name: str, required: bool) -> Any:
        self._not_empty(name)
        self.used.add(name)
        self.last = name
        value = self._raw.get(name)
        if value is None and required:
            raise ParamError(name, "missing parameter")
        return value

    def decimal(self, name: str, *, required: bool = True, positive: bool = True) -> Decimal | None:
        value = self._get(name, required)
        if value is None:
            return None
        try:
            number = parse_event_decimal(value, _LICENCE_FORM)
        except ValueError as exc:
            raise ParamError(name, str(exc)) from None
        if positive and number <= ZERO:
            raise ParamError(name, f"must be greater than zero, not {value}")
        return number

    def req_decimal(self, name: str) -> Decimal:
        number = self.decimal(name)
        assert number is not None
        return number

    def integer(self, name: str, *, minimum: int = 1, maximum: int = MAX_COUNT) -> int:
        value = self._get(name, True)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ParamError(name, f"must be a whole number, not {show(value)}")
        if value < minimum:
            raise ParamError(name, f"must be at least {minimum}")
        if value > maximum:
            raise ParamError(name, f"must be at most {maximum:,}, not {show(value)}")
        return int(value)

    def duration(self, name: str) -> timedelta:
        value = self._get(name, True)
        try:
            return parse_duration(value)
        except ValueError as exc:
            raise ParamError(name, str(exc)) from None

    def text(self, name: str, *, choices: tuple[str, ...] | None = None) -> str:
        value = self._get(name, True)
        if not isinstance(value, str | int) or isinstance(value, bool):
            raise ParamError(name, f"must be a string, not {show(value)}")
        text = str(value)
        if choices is not None and text not in choices:
            raise ParamError(name, f"must be one of {', '.join(choices)}, not {show(text)}")
        return text

    def flag(self, name: str, default: bool) -> bool:
        value = self._get(name, False)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise ParamError(name, f"must be true or false, not {show(value)}")
        return value

    def strings(self, name: str, *, required: bool = True, names: bool = True) -> tuple[str, ...] | None:
        """``names``: the items are names matched against events' identifiers (off for a list the caller checks
        against its own, stricter grammar, such as addresses)."""
        value = self._get(name, required)
        if value is None:
            return None
        if not isinstance(value, list) or not value:
            raise ParamError(name, "must be a non-empty list")
        items = []
        for position, item in enumerate(value, start=1):
            if isinstance(item, bool) or not isinstance(item, str | int):
                raise ParamError(name, f"list items must be strings, not {show(item)}")
            text = str(item)
            # Every list a licence holds (assets, sites, classes, currencies, sources, addresses) is matched
            # exactly against events' identifiers, which refuse blanks and invisible characters: an item holding
            # one could never match, a rule entry switched off without a word. Refused as events refuse it.
            problem = name_problem(text) if names else None
            if problem:
                raise ParamError(name, f"item {position} ({show(text)}) {problem}")
            items.append(text)
        return tuple(items)

    def event_types(self, name: str, default: tuple[str, ...], *, per_account: bool = False) -> frozenset[str]:
        """``per_account``: the rule keeps its state by customer account, so only types with an account count."""
        listed = self.strings(name, required=False)
        if listed is None:
            return frozenset(default)
        unknown = [item for item in listed if item not in EVENT_TYPES]
        if unknown:
            raise ParamError(name, f"unknown event type(s): {', '.join(unknown)}")
        # Only these types have a value (and, for a per-account rule, an account): a rule applied to another
        # (applies_to: [account]) would never find anything, a rule switched off without a word.
        usable, lacking = (TRANSACTION_TYPES, "customer account") if per_account else (
            VALUE_BEARING, "value")  # fmt: skip
        never = [item for item in listed if item not in usable]
        if never:
            raise ParamError(
                name,
                f"{', '.join(never)} events have no {lacking}, so this rule could never apply to them "
                f"(usable: {', '.join(sorted(usable))})",
            )
        return frozenset(listed)

    def unused(self, common: frozenset[str]) -> list[str]:
        names = (str(k)[:60] for k in self._raw if k not in self.used and k not in common)
        return sorted(name for name in names if not name.startswith("__"))

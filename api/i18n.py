"""Vietnamese and English for the console and the API's plain-language texts, from one catalogue.

The catalogue files (``console/i18n/en.json``, ``vi.json``) are the ones the console loads, so a label reads
the same whether the browser or the API wrote it. Numbers follow each language's convention (English
``5,000bn``, ``95.2%``; Vietnamese ``5.000 tỷ``, ``95,2%``, dates ``dd/mm/yyyy``): a Vietnamese reader taking
``5,000`` for five would misread a capital figure by a factor of a thousand."""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from functools import cache
from pathlib import Path
from typing import Literal

LANGUAGES = ("en", "vi")
DEFAULT = "en"
Language = Literal["en", "vi"]
CATALOGUE = Path(__file__).parent / "console" / "i18n"
_SEPARATORS = {"en": (",", "."), "vi": (".", ",")}  # (thousands, decimal)
_BILLION = Decimal(10) ** 9
_MILLION = Decimal(10) ** 6


@cache
def catalogue(language: str) -> dict[str, str]:
    data = json.loads((CATALOGUE / f"{language}.json").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return {str(k): str(v) for k, v in data.items()}


def pick_language(explicit: str | None, accept_language: str | None) -> Language:
    """The language asked for by name, else the first supported one the browser lists, else English."""
    for candidate in [explicit or "", *_accepted(accept_language or "")]:
        code = candidate.strip().lower().split("-")[0]
        if code == "vi":
            return "vi"
        if code == "en":
            return "en"
    return "en"


def _accepted(header: str) -> list[str]:
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")[:20]):
        name, _, params = part.strip().partition(";")
        weight = 1.0
        if params.strip().startswith("q="):
            try:
                weight = float(params.strip()[2:])
            except ValueError:
                weight = 0.0
        ranked.append((-weight, index, name))
    return [name for _, _, name in sorted(ranked)]


def text(language: str, key: str, **fields: str) -> str:
    """The catalogue's sentence with its fields filled in; a key missing in a language is a bug (tested)."""
    return catalogue(language)[key].format_map(fields)


def number(value: Decimal, language: str, places: int | None = None) -> str:
    """Grouped digits in the language's convention; ``places`` rounds (half even), else the exact digits."""
    if places is not None:
        value = value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN)
    sign = "-" if value < 0 else ""
    digits = format(abs(value), "f")
    whole, _, fraction = digits.partition(".")
    if places is None:
        fraction = fraction.rstrip("0")
    thousands, point = _SEPARATORS[language]
    groups: list[str] = []
    while len(whole) > 3:
        groups.insert(0, whole[-3:])
        whole = whole[:-3]
    grouped = thousands.join([whole, *groups])
    return f"{sign}{grouped}{point + fraction if fraction else ''}"


def amount(value: Decimal, language: str) -> str:
    """A money amount as people say it: ``5,000bn`` / ``5.000 tỷ`` (billions), ``400m`` / ``400 triệu``."""
    magnitude = abs(value)
    if magnitude >= _BILLION:
        return text(language, "unit.bn", n=number(_short(value / _BILLION), language))
    if magnitude >= _MILLION:
        return text(language, "unit.m", n=number(_short(value / _MILLION), language))
    return number(_short(value), language)


def _short(value: Decimal) -> Decimal:
    """At most two decimal places, and none on a whole number."""
    rounded = value.quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN).normalize()
    return rounded.quantize(Decimal(1)) if rounded == rounded.to_integral_value() else rounded


def percent(ratio: Decimal, language: str, places: int = 1) -> str:
    """A ratio (0.952) as a percentage (``95.2%`` / ``95,2%``); whole percentages without decimals."""
    value = (ratio * 100).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN)
    if value == value.to_integral_value():
        value = value.quantize(Decimal(1))
        return f"{number(value, language)}%"
    return f"{number(value, language, places)}%"


def day(value: date | datetime, language: str) -> str:
    """Vietnamese ``dd/mm/yyyy``; English the unambiguous ``yyyy-mm-dd``."""
    return value.strftime("%d/%m/%Y") if language == "vi" else value.strftime("%Y-%m-%d")

"""Decimal handling for amounts, prices and limits: floats would make limit checks depend on rounding.

Every accepted number is bounded (docs/events.md, "Bounds"): at most ``MAX_DIGITS`` significant digits, at
most ``MAX_PLACES`` digits after the point and an absolute value below ``10**MAX_INTEGER_DIGITS``. Within
these bounds a value is held exactly in the default 28-digit decimal context, and the engine's products
(quantity x price x rate) and sums stay finite far below the context's exponent limit: a line carrying
``1e999999`` or a 5,000-digit integer is refused with a reason instead of overflowing a rule later."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from sandboxwatch.rules_engine.plain_text import plain

ZERO = Decimal(0)
HUNDRED = Decimal(100)
MAX_DIGITS = 28
MAX_PLACES = 18
MAX_INTEGER_DIGITS = 24
# Longer text cannot be a bounded decimal (28 digits, a sign, a point, an exponent and some zeros);
# refusing it before Decimal() keeps a megabyte of digits from being parsed at all.
MAX_TEXT = 64
_SHORT = 19
_YAML_NON_FINITE = frozenset({".inf", ".nan"})
_NON_FINITE = frozenset({"nan", "snan", "inf", "infinity"})
# The events contract's decimal string (docs/events.md, Bounds): ASCII digits, an optional leading '-', an
# optional fraction with digits on both sides of the point, an optional exponent. Decimal() itself also takes
# "400_000_000", Arabic-Indic or other Unicode digits, surrounding blanks, a leading '+', "1." and ".5": a
# reader of the same line in another language may not, so a line is refused rather than read generously.
EVENT_DECIMAL = re.compile(r"-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")


class OversizeNumber:
    """What the JSON decoder gives for an integer literal too long to be a bounded decimal, so the field
    parser can refuse it with the field's name (Python's own int() raises past 4,300 digits)."""

    __slots__ = ("digits",)

    def __init__(self, digits: int) -> None:
        self.digits = digits

    def __repr__(self) -> str:
        return f"<a {self.digits}-digit number>"


def parse_decimal(value: object) -> Decimal:
    """Accept decimal strings and integers; refuse floats, whose binary value is not what was written."""
    if type(value) is str and len(value) <= _SHORT and "e" not in value and "E" not in value:
        # The common case, decided by length alone: 19 characters without an exponent cannot hold more
        # than 19 digits, 18 places or a value of 1e19.
        try:
            result = Decimal(value)
        except InvalidOperation:
            raise _not_a_number(value) from None
        if not result.is_finite():
            raise ValueError(f"must be a finite number, not {plain(value)}")
        return result
    if isinstance(value, bool):
        raise ValueError("must be a decimal string, not a boolean")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        if not -(10**MAX_INTEGER_DIGITS) < value < 10**MAX_INTEGER_DIGITS:
            raise ValueError(f"magnitude must be below 1e{MAX_INTEGER_DIGITS}")
        result = Decimal(value)
    elif isinstance(value, str):
        if len(value) > MAX_TEXT:
            raise ValueError(f"a decimal string of {len(value)} characters is longer than {MAX_TEXT}")
        try:
            result = Decimal(value.strip())
        except InvalidOperation:
            raise _not_a_number(value) from None
    elif isinstance(value, float):
        raise ValueError(f"must be a decimal string, not a float ({value!r} loses precision)")
    elif isinstance(value, OversizeNumber):
        raise ValueError(f"a {value.digits}-digit number is outside the bounds (below 1e{MAX_INTEGER_DIGITS})")
    else:
        raise ValueError(f"must be a decimal string, not {type(value).__name__}")
    if not result.is_finite():
        raise ValueError(f"must be a finite number, not {plain(value)}")
    return check_bounds(result)


# How a string outside that grammar is refused; ``{value}`` is the text as written. A licence names its own
# form (rules_engine/licence_params.py) and goes through the same check.
EVENT_FORM = (
    "not a decimal number in the events' form: {value} (ASCII digits with an optional leading '-', fraction "
    "and exponent, like 1250.5, -3 or 1e6; no blanks, '+', '_', other digits or bare point)"
)


def parse_event_decimal(value: object, refusal: str = EVENT_FORM) -> Decimal:
    """``parse_decimal`` for an event's field (or a licence's number): a string must also be written in the
    contract's grammar. The one check of that grammar, for events and licences alike."""
    if type(value) is str and not EVENT_DECIMAL.fullmatch(value) and len(value) <= MAX_TEXT:
        if value.strip().lstrip("+-").lower() in _NON_FINITE | _YAML_NON_FINITE:
            raise ValueError(f"must be a finite number, not {value!r}")
        raise ValueError(refusal.format(value=repr(value)))
    return parse_decimal(value)


def short_positive_decimal(value: object) -> Decimal | None:
    """``parse_event_decimal(value)`` when ``value`` is a text of at most 19 ASCII digits with an optional
    fraction (``7604.52``, ``26300``) and its value is greater than zero, else None (left to it). The form
    every amount and price of a stream takes, checked without a regular expression: within 19 characters and
    without an exponent it holds the bounds (``parse_decimal``), so only Decimal() itself remains."""
    if type(value) is not str or len(value) > _SHORT or not value.isascii():
        return None
    if not value.isdigit():  # ASCII: only 0-9 are digits
        whole, _, fraction = value.partition(".")
        if not (whole.isdigit() and fraction.isdigit()):
            return None
    result = Decimal(value)
    return result if result > ZERO else None


def _not_a_number(value: str) -> ValueError:
    if value.strip().lstrip("+-").lower() in _YAML_NON_FINITE:
        return ValueError(f"must be a finite number, not {plain(value)}")
    return ValueError(f"not a decimal number: {value[:MAX_TEXT]!r}")


def check_bounds(value: Decimal) -> Decimal:
    """Refuse a value the engine could not hold exactly or compute with finitely (see the module doc)."""
    if not value:
        return value
    if value.adjusted() >= MAX_INTEGER_DIGITS:
        raise ValueError(f"magnitude must be below 1e{MAX_INTEGER_DIGITS}, not {_short(value)}")
    _, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)  # finite values only reach here
    if exponent >= -MAX_PLACES and len(digits) <= MAX_DIGITS:
        return value
    # Trailing zeros are not precision (1.50000000000000000000 is 1.5): count without them. Not
    # normalize(), which would round a 29-digit value to 28 digits and accept what was never written.
    kept = len(digits)
    while kept > 1 and digits[kept - 1] == 0:
        kept -= 1
    exponent += len(digits) - kept
    if exponent < -MAX_PLACES:
        raise ValueError(f"more than {MAX_PLACES} digits after the decimal point: {_short(value)}")
    if kept > MAX_DIGITS:
        raise ValueError(f"more than {MAX_DIGITS} significant digits: {_short(value)}")
    return value


def _short(value: Decimal) -> str:
    text = str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def decimal_text(value: Decimal) -> str:
    """Plain positional notation without trailing zeros: '1E+8' would confuse spreadsheets and people."""
    if value == ZERO:
        return "0"
    text = format(value.normalize(), "f")
    return text


def rounded(value: Decimal, places: int) -> Decimal:
    """Round derived ratios for display; comparisons are always made on the exact value."""
    return value.quantize(Decimal(1).scaleb(-places))

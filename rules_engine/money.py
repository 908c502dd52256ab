"""Decimal handling for amounts, prices and limits: floats would make limit checks depend on rounding."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

ZERO = Decimal(0)
HUNDRED = Decimal(100)


def parse_decimal(value: object) -> Decimal:
    """Accept decimal strings and integers; refuse floats, whose binary value is not what was written."""
    if isinstance(value, bool):
        raise ValueError("must be a decimal string, not a boolean")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except InvalidOperation:
            raise ValueError(f"not a decimal number: {value!r}") from None
    elif isinstance(value, float):
        raise ValueError(f"must be a decimal string, not a float ({value!r} loses precision)")
    else:
        raise ValueError(f"must be a decimal string, not {type(value).__name__}")
    if not result.is_finite():
        raise ValueError(f"must be a finite number, not {value!r}")
    return result


def decimal_text(value: Decimal) -> str:
    """Plain positional notation without trailing zeros: '1E+8' would confuse spreadsheets and people."""
    if value == ZERO:
        return "0"
    text = format(value.normalize(), "f")
    return text


def rounded(value: Decimal, places: int) -> Decimal:
    """Round derived ratios for display; comparisons are always made on the exact value."""
    return value.quantize(Decimal(1).scaleb(-places))

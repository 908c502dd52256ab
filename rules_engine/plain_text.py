"""A value as a message quotes it: text in quotes (so a blank or a typo shows), a number as the person
wrote it (``3.5``, never Python's ``Decimal('3.5')``), and never more than a short excerpt."""

from __future__ import annotations

SHORT = 60


def plain(value: object, limit: int = SHORT) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."

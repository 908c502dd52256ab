"""Argument types every command shares: numbers refused at parse time, before anything starts (exit 2 with
the option and the reason), rather than clamped quietly or failing after work was done (a port above 65535
used to crash ``up`` after it had published the whole day)."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def bounded_int(low: int, high: int) -> Callable[[str], int]:
    """A whole number from ``low`` to ``high``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be from {low} to {high}, not {value}")
        return value

    return parse


# A TCP port: 0 asks the system for a free one.
port_number = bounded_int(0, 65535)

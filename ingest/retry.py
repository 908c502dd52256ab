"""Retrying calls to remote peers with capped exponential backoff, and saying clearly what failed.

Transient failures (timeouts, rate limits, a node or exchange briefly down) are retried; anything that more
attempts cannot fix (bad credentials, an unknown symbol, a rejected request) fails at once with the peer,
the operation and the peer's own message, so an operator knows what to change."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)


class ConnectorError(Exception):
    """A remote call failed for good (``transient`` says whether a later poll may succeed)."""

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


@dataclass(frozen=True, slots=True)
class Backoff:
    attempts: int = 6
    first_delay_s: float = 0.5
    max_delay_s: float = 30.0
    # Rate limits are the peer asking us to slow down: wait longer than for a dropped connection.
    rate_limit_factor: float = 4.0

    def delay(self, attempt: int, rate_limited: bool) -> float:
        base = self.first_delay_s * (2 ** (attempt - 1)) * (self.rate_limit_factor if rate_limited else 1.0)
        return float(min(self.max_delay_s, base))


Classifier = Callable[[BaseException], "str | None"]
"""Returns None for a permanent failure, or 'transient' / 'rate_limit' for one worth retrying."""


def call_with_backoff(
    operation: Callable[[], T],
    what: str,
    classify: Classifier,
    backoff: Backoff,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    for attempt in range(1, backoff.attempts + 1):
        try:
            return operation()
        except Exception as exc:
            kind = classify(exc)
            detail = f"{what}: {type(exc).__name__}: {str(exc)[:300]}"
            if kind is None:
                raise ConnectorError(detail, transient=False) from exc
            if attempt == backoff.attempts:
                raise ConnectorError(f"{detail} (gave up after {attempt} attempts)", transient=True) from exc
            wait = backoff.delay(attempt, kind == "rate_limit")
            log.warning("%s; retrying in %.1fs (attempt %d of %d)", detail, wait, attempt, backoff.attempts)
            sleep(wait)
    raise AssertionError("unreachable")


def poll_forever(
    poll: Callable[[], str],
    interval_s: float,
    sleep: Callable[[float], None] = time.sleep,
    once: bool = False,
    stop: Callable[[], bool] = lambda: False,
) -> None:
    """Both connectors' outer loop: a poll that failed only transiently is logged and tried again next
    interval, so a peer's bad hour never stops the connector; a permanent failure (or any in ``once``) raises.
    ``poll`` returns the line to log about what it published."""
    while True:
        try:
            log.info("%s", poll())
        except ConnectorError as exc:
            if not exc.transient or once:
                raise
            log.error("poll failed, trying again next interval: %s", exc)
        if once or stop():
            return
        sleep(interval_s)

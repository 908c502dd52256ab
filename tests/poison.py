"""Poison events: valid-looking JSON whose values no computation was built for, one per class of the issue
that once stopped a partition. Shared by the monitor tests, the fault tests and ``bench/faults.py``."""

from __future__ import annotations

import json
from typing import Any


def poison_lines(trade: str, price: str, account: str) -> dict[str, str]:
    """Class name -> one message, each made from a good line of the day so only the poisoned field differs."""
    t: dict[str, Any] = json.loads(trade)
    p: dict[str, Any] = json.loads(price)
    a: dict[str, Any] = json.loads(account)
    huge_integer = "9" * 5000
    out = {
        "quantity 1e999999": {**t, "event_id": "poison-exponent", "quantity": "1e999999"},
        "price 1e27": {**t, "event_id": "poison-price", "price": "1e27", "quantity": "1e27"},
        "reference price 1e-27": {**p, "event_id": "poison-tiny-price", "price": "1e-27"},
        "ts year 9999": {**t, "event_id": "poison-9999", "ts": "9999-12-31T23:59:59-14:00"},
        "ts year 1 +14:00": {**t, "event_id": "poison-year-1", "ts": "0001-01-01T00:00:00+14:00"},
        "lone surrogate": {**a, "event_id": "poison-surrogate", "account": "acct-\ud800"},
    }
    lines = {name: json.dumps(body) for name, body in out.items()}
    # A JSON number, not a string, of 5,000 digits: Python refuses to convert it (int max str digits).
    lines["5000-digit integer"] = json.dumps({**t, "event_id": "poison-digits", "quantity": 0}).replace(
        '"quantity": 0', f'"quantity": {huge_integer}'
    )
    return lines


def interleave(day: list[str], poison: dict[str, str]) -> list[str]:
    """The day with the poison spread evenly through it, each dated like the line before it (unless its time
    is the poison), so that it sits where a producer would have published it: the stream and the
    self-check then see the same order."""
    lines = list(day)
    step = len(lines) // (len(poison) + 1)
    for i, line in enumerate(poison.values(), 1):
        at = i * step + i - 1
        body = line
        if '"ts": "9999' not in line and '"ts": "0001' not in line:
            before = json.loads(lines[at - 1])["ts"]
            body = line.replace(f'"ts": "{json.loads(readable_head(line))["ts"]}"', f'"ts": "{before}"', 1)
        lines.insert(at, body)
    return lines


def readable_head(line: str) -> str:
    """The line with an unreadable huge number replaced, enough to read its other fields."""
    return line.replace("9" * 5000, "0")


# Dated far outside the day, these two cannot sit in time order mid-stream: the self-check sorts them to an end
# of the file, the stream meets them where they were published, so the state they meet (and hence whether
# checking them raises) may differ. Findings naming them are compared by presence, not by id.
OUT_OF_ORDER = frozenset({"poison-9999", "poison-year-1"})


def comparable(findings: dict[str, tuple[str, tuple[str, ...]]]) -> set[str]:
    """finding_id -> (kind, evidence): the ids to compare exactly between the stream and the self-check
    (invalid-event ids embed a line number there and an offset here, so those are compared by evidence)."""
    return {
        fid
        for fid, (kind, evidence) in findings.items()
        if kind != "invalid_event" and not OUT_OF_ORDER & set(evidence)
    }

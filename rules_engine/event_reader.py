"""Reads JSONL or CSV event files line by line; a bad line becomes an ``EventError``, not an exception."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from typing import Any

from rules_engine.event_parser import FieldError, event_from_dict
from rules_engine.events import Event, EventError
from rules_engine.timestamps import parse_timestamp

_LIST_FIELDS = frozenset({"wallets", "refs"})
_BOOL_FIELDS = frozenset({"bank_account_verified"})
_INT_FIELDS = frozenset({"log_index", "block"})
_RAW_LIMIT = 500


def _reject_float(text: str) -> object:
    # Keep the float recognisable so the parser can refuse it with a clear reason instead of rounding.
    return float(text)


# One decoder for all lines: json.loads with a keyword argument builds a new decoder on every call.
_DECODER = json.JSONDecoder(parse_float=_reject_float)


def error_for(source: str, line: int, raw: str, obj: Any, exc: FieldError) -> EventError:
    """Keep whatever envelope fields survive, so the invalid-event finding says whose line it was."""
    event_id = participant = None
    ts = None
    if isinstance(obj, dict):
        event_id = obj.get("event_id") if isinstance(obj.get("event_id"), str) else None
        participant = obj.get("participant") if isinstance(obj.get("participant"), str) else None
        try:
            ts = parse_timestamp(obj.get("ts"))
        except ValueError:
            ts = None
    return EventError(
        source=source,
        line=line,
        field=exc.field or None,
        reason=exc.reason,
        raw=raw[:_RAW_LIMIT],
        event_id=event_id,
        participant=participant,
        ts=ts,
    )


def parse_json_line(text: str, source: str, line: int) -> Event | EventError:
    """One JSONL line to an event; shared by the file reader and the stream consumer."""
    try:
        obj = _DECODER.decode(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        return EventError(source, line, None, f"not valid JSON: {exc}", text[:_RAW_LIMIT])
    try:
        return event_from_dict(obj)
    except FieldError as exc:
        return error_for(source, line, text, obj, exc)


def read_jsonl(lines: Iterable[str], source: str) -> Iterator[tuple[int, Event | EventError]]:
    for number, text in enumerate(lines, start=1):
        stripped = text.strip()
        if not stripped:
            continue
        yield number, parse_json_line(stripped, source, number)


def _csv_cell(name: str, cell: str) -> Any:
    if cell[:1] in ("[", "{"):
        try:
            return _DECODER.decode(cell)
        except json.JSONDecodeError as exc:
            raise FieldError(name, f"cell is not valid JSON: {exc}") from None
    if name in _LIST_FIELDS:
        return [item.strip() for item in cell.split(";") if item.strip()]
    if name in _BOOL_FIELDS:
        lowered = cell.strip().lower()
        if lowered not in ("true", "false"):
            raise FieldError(name, f"must be true or false, not {cell!r}")
        return lowered == "true"
    if name in _INT_FIELDS:
        try:
            return int(cell)
        except ValueError:
            raise FieldError(name, f"must be an integer, not {cell!r}") from None
    return cell


def read_csv(lines: Iterable[str], source: str) -> Iterator[tuple[int, Event | EventError]]:
    """CSV with the contract's column names; lists are ';'-separated, nested objects are JSON cells."""
    reader = csv.DictReader(iter(lines))
    for row in reader:
        number = reader.line_num
        raw = ",".join(str(v) for v in row.values() if v is not None)
        if None in row:
            yield number, EventError(source, number, None, "more cells than header columns", raw[:_RAW_LIMIT])
            continue
        obj: dict[str, Any] = {}
        try:
            for name, cell in row.items():
                if cell is None or cell == "":
                    continue
                obj[name] = _csv_cell(name, cell)
            yield number, event_from_dict(obj)
        except FieldError as exc:
            yield number, error_for(source, number, raw, obj, exc)


def detect_format(name: str, first_line: str | None = None) -> str:
    """By file extension, else by the first character: a JSON object starts with '{'."""
    lowered = name.lower()
    if lowered.endswith(".csv"):
        return "csv"
    if lowered.endswith((".jsonl", ".json", ".ndjson")):
        return "jsonl"
    if first_line is not None and not first_line.lstrip().startswith("{"):
        return "csv"
    return "jsonl"


def read_events(lines: Iterable[str], source: str, fmt: str) -> Iterator[tuple[int, Event | EventError]]:
    if fmt == "csv":
        return read_csv(lines, source)
    return read_jsonl(lines, source)

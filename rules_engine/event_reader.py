"""Reads JSONL or CSV event files line by line; a bad line becomes an ``EventError``, not an exception."""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import itertools
import json
import sys
from collections.abc import Iterable, Iterator, Sequence
from typing import IO, Any, TextIO

import orjson

from sandboxwatch.rules_engine.event_digest import bytes_digest, line_digest
from sandboxwatch.rules_engine.event_parser import FieldError, clean_text, event_from_dict, unicode_problem
from sandboxwatch.rules_engine.events import Event, EventError
from sandboxwatch.rules_engine.json_bounds import repeated_key, repeated_key_reason, too_deep, unique_object
from sandboxwatch.rules_engine.money import OversizeNumber
from sandboxwatch.rules_engine.timestamps import parse_timestamp

_LIST_FIELDS = frozenset({"wallets", "refs"})
_BOOL_FIELDS = frozenset({"bank_account_verified"})
_INT_FIELDS = frozenset({"log_index", "block"})
_RAW_LIMIT = 500
# Bounds on a line (docs/events.md): an event is a few hundred bytes, so a megabyte is no real event, and
# nesting deeper than any event's structure is refused before it reaches a rule, a store or a pickle.
MAX_LINE_CHARS = 1 << 20
MAX_DEPTH = 8
_MAX_INT_DIGITS = 19
BOM = "\ufeff"


def _reject_float(text: str) -> object:
    # Keep the float recognisable so the parser can refuse it with a clear reason instead of rounding.
    return float(text)


def _bounded_int(text: str) -> object:
    # int() itself raises past 4,300 digits; anything past 19 is outside every bound anyway.
    return int(text) if len(text) <= _MAX_INT_DIGITS else OversizeNumber(len(text.lstrip("-")))


# One decoder for all lines: json.loads with a keyword argument builds a new decoder on every call. It marks an
# object that repeats a key (json_bounds.unique_object), which the line's parser then refuses.
_DECODER = json.JSONDecoder(parse_float=_reject_float, parse_int=_bounded_int, object_pairs_hook=unique_object)
# orjson decodes a line about four times faster and gives the same objects as _DECODER for every line it
# accepts, except numbers and repeated keys: _DECODER turns an integer literal of more than 19 characters
# into an OversizeNumber (refused by digit count) where orjson gives an int, or past 2**64 a float; a float
# literal is a float in both; and orjson keeps a repeated key's last value without a word. So a line whose
# value holds any float, or an int that long, or may repeat a key, and every line orjson refuses (a lone
# surrogate escape, NaN, 1e999, bad JSON), is decoded again by _DECODER: values and error reasons stay
# exactly as before, and a repeated key is found. (Walking the decoded value is cheaper than searching the
# text for digits.)
_LOW, _HIGH = -(10 ** (_MAX_INT_DIGITS - 1)), 10**_MAX_INT_DIGITS


def _strings(value: Any, depth: int = 1) -> int:
    """How many JSON strings (keys, string values and items) an orjson value holds, or -1 when it may
    differ from _DECODER's: it holds a float or an integer whose literal is longer than 19 characters
    (below -10**18 or from 10**19 up), or it nests deeper than MAX_DEPTH (``depth``: the value's own level,
    1 for a line's). Counted down from "every key and value a string", so the common item, a string, costs
    no more than a type check."""
    if type(value) is dict:
        strings = 2 * len(value)
        items = value.values()
    else:
        strings = len(value)
        items = value
    for item in items:
        kind = type(item)
        if kind is str:
            continue
        strings -= 1
        if kind is int:
            if not _LOW < item < _HIGH:
                return -1
        elif kind is float:
            return -1
        elif kind is dict or kind is list:
            if depth >= MAX_DEPTH:
                return -1
            inner = _strings(item, depth + 1)
            if inner < 0:
                return -1
            strings += inner
    return strings


_loads = orjson.loads
JSONDecodeError = orjson.JSONDecodeError
_NOT_EXACT: Any = object()
# False: every line through ``_decode`` alone (bench/monitor_bench.py's stdlib decoder swaps that).
_FAST_JSON = True


def _quoted(text: str) -> int:
    """How many JSON strings valid JSON text holding a backslash has, counted by its quote marks (two a
    string), or -1 when that cannot be told cheaply (an escaped backslash, which may precede a closing
    quote). Without a backslash every quote mark is one end of a string."""
    if "\\\\" in text:
        return -1
    return (text.count('"') - text.count('\\"')) // 2  # every backslash-quote is a quote inside a string


def decode_json(text: str) -> Any:
    """One line's JSON value; raises ValueError (or RecursionError) like ``_DECODER.decode``."""
    return _decode(text)[0]


def _decode(text: str, data: bytes | None = None) -> tuple[Any, bool]:
    """``decode_json``, and whether _DECODER decoded it (only then can it hold a ``RepeatedKeys``); ``data``:
    the text's UTF-8, when the caller has it (its quote marks are counted there, at half the cost)."""
    value = _orjson_exact(text, data)
    if value is _NOT_EXACT:
        return _DECODER.decode(text), True  # also a scalar line: rare, and never an event
    return value, False


def _orjson_exact(text: str, data: bytes | None) -> Any:
    """orjson's value of the text when it is provably _DECODER's, else ``_NOT_EXACT`` (also when orjson
    refuses the text): an object or a list, nested at most MAX_DEPTH, holding no float and no long int
    (``_strings``), with as many strings as the text has. A repeated key costs orjson one value, so the
    decoded value then holds fewer strings (the lost key, at least) than the text: only when the counts
    agree is orjson's value the whole line's."""
    try:
        value = _loads(text)
    except JSONDecodeError:
        return _NOT_EXACT
    if type(value) is dict or type(value) is list:
        strings = _strings(value)
        if strings >= 0:
            if "\\" not in text:
                if (text.count('"') if data is None else data.count(b'"')) == 2 * strings:
                    return value
            elif _quoted(text) == strings:
                return value
    return _NOT_EXACT


def error_for(source: str, line: int, raw: str, obj: Any, exc: FieldError) -> EventError:
    """Keep whatever envelope fields survive, so the invalid-event finding says whose line it was."""
    event_id = participant = None
    ts = None
    if isinstance(obj, dict):
        event_id = clean_text(obj.get("event_id"))
        participant = clean_text(obj.get("participant"))
        try:
            ts = parse_timestamp(obj.get("ts"))
        except ValueError:
            ts = None
    return EventError(
        source=source,
        line=line,
        field=exc.field or None,
        reason=exc.reason,
        raw=_raw(raw),
        event_id=event_id,
        participant=participant,
        ts=ts,
    )


def parse_json_line(text: str, source: str, line: int) -> Event | EventError:
    """One JSONL line to an event; shared by the file reader and the stream consumer."""
    if len(text) > MAX_LINE_CHARS:
        return EventError(source, line, None, f"a line longer than {MAX_LINE_CHARS} characters",
                          _raw(text))  # fmt: skip
    if text[:1] == BOM:
        text = text[1:]
    if not text.isascii():
        problem = _encoding_problem(text)
        if problem:
            return EventError(source, line, None, problem, _raw(text))
    # The line's UTF-8 (the text encodes: checked above), counted and digested: counting a character in
    # bytes costs half what it does in a str, and in UTF-8 an ASCII byte only ever stands for itself.
    data = text.encode()
    # The common line first: an object orjson decodes (orjson bounds its own depth, far above ours, so it
    # is safe on any text) to what _DECODER would give (``_decode``'s test) and nested at most MAX_DEPTH
    # (``_strings`` says): for valid JSON that depth is what ``too_deep`` counts, so neither the depth nor
    # the decoder would refuse it and the checks below would take this value. Their two bracket counts and
    # a call cost nearly half of what orjson itself does (issue 18). Any other line takes them, in their order.
    obj: Any = _orjson_exact(text, data) if _FAST_JSON else _NOT_EXACT
    if type(obj) is not dict:  # a list, or no value known exact: the checks below decide
        if (data.count(b"{") > MAX_DEPTH or data.count(b"[") > MAX_DEPTH) and too_deep(text, MAX_DEPTH):
            return EventError(source, line, None, f"nested deeper than {MAX_DEPTH} levels", _raw(text))
        try:
            obj, slow = _decode(text, data)
        except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
            return EventError(source, line, None, f"not valid JSON: {str(exc)[:200]}", _raw(text))
        if slow:
            where = repeated_key(obj)
            if where is not None:
                return error_for(source, line, text, obj, FieldError(where, repeated_key_reason(where)))
    try:
        event = event_from_dict(obj)
    except FieldError as exc:
        return error_for(source, line, text, obj, exc)
    event.digest = bytes_digest(data)
    return event


def _encoding_problem(text: str) -> str | None:
    """Bytes that were not UTF-8 reach here as surrogates (the files are decoded with surrogateescape)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        char = ord(text[exc.start])
        if 0xDC80 <= char <= 0xDCFF:
            return f"not valid UTF-8: byte 0x{char - 0xDC00:02X} at character {exc.start + 1}"
        return f"not valid Unicode: lone surrogate U+{char:04X} at character {exc.start + 1}"
    return None


def _raw(text: str) -> str:
    """The start of a bad line for the report, as text that can be written out (invalid bytes escaped)."""
    raw = text[:_RAW_LIMIT]
    return raw if raw.isascii() or unicode_problem(raw) is None else raw.encode("utf-8", "backslashreplace").decode()


def jsonl_texts(lines: Iterable[str]) -> Iterator[tuple[int, str]]:
    """(line number, the line's text as parsed): blank lines skipped, a BOM before the first content dropped.

    Only a line feed ends a JSONL line (docs/events.md), as in the stream, which splits a batch message at
    b"\\n" alone: the file readers (``decode_events``) also end a line at a bare carriage return, which is
    whitespace inside a JSON line, so such pieces are joined again, and the line numbers are those of the
    file's line feeds, as an editor and the stream count them."""
    return _jsonl_texts(lines, False)


def _jsonl_texts(lines: Iterable[str], content: bool) -> Iterator[tuple[int, str]]:
    """``jsonl_texts``, with ``content``: whether a line with content came before these lines."""
    for number, text in enumerate(_lf_lines(lines), start=1):
        stripped = text.strip()
        if stripped[:1] == BOM and not content:
            stripped = stripped[1:].strip()
        if stripped:
            content = True
            yield number, stripped


def _lf_lines(lines: Iterable[str]) -> Iterator[str]:
    """The lines joined again where they were split at a bare carriage return (a line ending in "\\r"; one
    ending in "\\r\\n" ends in "\\n"). A joined line is bounded like any other (``bounded_lines``): past
    MAX_LINE_CHARS the rest of it is consumed but not kept, and the parser reports it as too long."""
    pending: list[str] = []
    size = 0
    for line in lines:
        if not line.endswith("\r"):
            if not pending:
                yield line
                continue
            if size <= MAX_LINE_CHARS:
                pending.append(line)
            yield "".join(pending)
            pending, size = [], 0
            continue
        if size <= MAX_LINE_CHARS:
            pending.append(line)
            size += len(line)
    if pending:
        yield "".join(pending)


def read_jsonl(lines: Iterable[str], source: str) -> Iterator[tuple[int, Event | EventError]]:
    """``parse_json_line`` over ``jsonl_texts(lines)``, with the common line (no carriage return at its end,
    nothing pending, no BOM) taken in this one loop: three generators a line cost about a microsecond
    (issue 18). Anything else goes through ``_lf_lines`` and ``jsonl_texts``' own rules, line for line."""
    iterator = iter(lines)
    content = False
    for number, line in enumerate(iterator, start=1):
        if line[-1:] == "\r" or (not content and BOM in line):
            # A carriage-return piece (joined again) or a BOM before the first content: the general rules,
            # on this line and the rest, numbered on from here.
            rest = itertools.chain((line,), iterator)
            for offset, text in _jsonl_texts(rest, content):
                yield number - 1 + offset, parse_json_line(text, source, number - 1 + offset)
            return
        stripped = line.strip()
        if stripped:
            content = True
            yield number, parse_json_line(stripped, source, number)


def _csv_cell(name: str, cell: str) -> Any:
    if cell[:1] in ("[", "{"):
        if too_deep(cell, MAX_DEPTH):
            raise FieldError(name, f"cell nested deeper than {MAX_DEPTH} levels")
        try:
            value = _DECODER.decode(cell)
        except (ValueError, RecursionError) as exc:
            raise FieldError(name, f"cell is not valid JSON: {str(exc)[:200]}") from None
        where = repeated_key(value)
        if where is not None:
            raise FieldError(f"{name}.{where}", repeated_key_reason(where))
        return value
    if name in _LIST_FIELDS:
        # Items as written: a blank around or an empty item between ';' is refused by the parser with the reason
        # the same JSON list gets (a stripped " 0xdead" would be a different text from the JSON path's).
        return cell.split(";")
    if name in _BOOL_FIELDS:
        lowered = cell.strip().lower()
        if lowered not in ("true", "false"):
            raise FieldError(name, f"must be true or false, not {cell!r}")
        return lowered == "true"
    if name in _INT_FIELDS:
        try:
            return _bounded_int(cell.strip())
        except ValueError:
            raise FieldError(name, f"must be an integer, not {cell[:40]!r}") from None
    return cell


def _without_bom(lines: Iterable[str]) -> Iterator[str]:
    """A BOM dropped from the lines up to the first with content, the header: after a blank first line it
    would otherwise stay in the first column's name ("\\ufeffevent_id"), and every row would lack that
    column."""
    iterator = iter(lines)
    for line in iterator:
        if line[:1] == BOM:
            line = line[1:]
        yield line
        if line.strip(" \t\r\n"):
            break
    yield from iterator


class _CsvReader(csv.DictReader):  # type: ignore[type-arg]
    """A DictReader whose header is the first row with content: the csv module takes a leading blank line
    for a header of no columns, and then reads every row as "more cells than header columns". Blank lines
    are still counted, so line numbers stay those of the file."""

    _header: Sequence[str] | None = None
    _header_read = False

    @property
    def fieldnames(self) -> Sequence[str] | None:
        if not self._header_read:
            self._header_read = True
            self._header = next((row for row in self.reader if any(c.strip(BOM + " \t") for c in row)), None)
        self.line_num = self.reader.line_num
        return self._header

    @fieldnames.setter
    def fieldnames(self, value: Sequence[str] | None) -> None:
        self._header, self._header_read = value, value is not None


def read_csv(lines: Iterable[str], source: str) -> Iterator[tuple[int, Event | EventError]]:
    """CSV with the contract's column names; lists are ';'-separated, nested objects are JSON cells.

    A row the csv module cannot read (a cell over its size limit, a broken quote) is a bad line too."""
    for number, item, _ in csv_records(lines, source):
        yield number, item


def csv_records(lines: Iterable[str], source: str) -> Iterator[tuple[int, Event | EventError, dict[str, Any]]]:
    """``read_csv`` with each row's cells as the JSON object they stand for (what ``up`` publishes)."""
    reader = _CsvReader(_without_bom(lines))
    header_checked = False
    repeated: FieldError | None = None
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield reader.line_num, EventError(source, reader.line_num, None, f"not valid CSV: {exc}", ""), {}
            continue
        number = reader.line_num
        raw = ",".join(str(v) for v in row.values() if isinstance(v, str))
        if None in row:
            yield number, EventError(source, number, None, "more cells than header columns", _raw(raw)), {}
            continue
        if not header_checked:
            header_checked = True
            repeated = _repeated_column(reader.fieldnames or ())
        if repeated is not None:
            # The cells kept are those of the column's last occurrence (csv.DictReader's): only for the report.
            yield number, error_for(source, number, raw, row, repeated), {}
            continue
        if len(raw) > MAX_LINE_CHARS:
            error = EventError(source, number, None, f"a row longer than {MAX_LINE_CHARS} characters", _raw(raw))
            yield number, error, {}
            continue
        obj: dict[str, Any] = {}
        try:
            for name, cell in row.items():
                if cell is None or cell == "":
                    continue
                obj[name] = _csv_cell(name, cell)
            event = event_from_dict(obj)
            event.digest = line_digest(csv_object_text(obj))
            yield number, event, obj
        except FieldError as exc:
            yield number, error_for(source, number, raw, obj, exc), obj


def _repeated_column(header: Sequence[str]) -> FieldError | None:
    """A header naming a column twice makes every row ambiguous, as a repeated JSON key does a line."""
    seen: dict[str, int] = {}
    for index, name in enumerate(header, start=1):
        if name in seen:
            return FieldError(
                name,
                f"the column {name!r} appears more than once in the header (columns {seen[name]} and {index}): "
                "which of its cells is meant is ambiguous",
            )
        seen[name] = index
    return None


def csv_object_text(obj: dict[str, Any]) -> str:
    """A CSV row as the JSON object its non-empty cells stand for: what ``up`` publishes for the row, and
    what its digest is taken of (docs/events.md, Duplicates). Unambiguous where the row's text joined by
    commas is not (cells "a,b" and "c" against "a" and "b,c"), and the same digest the stream gives the
    published object, so ``check`` and ``up`` tell a re-delivered row from a conflicting one alike."""
    return json.dumps(obj, separators=(",", ":"), default=str)


def detect_format(name: str, first_line: str | None = None) -> str:
    """By content: a JSON object starts with '{', a CSV file with a header naming the envelope columns.

    The name decides only when the content does not (an empty file, or neither form): a misnamed file
    is read as what it is, and a file that is neither is read as JSONL, so every line of it is reported
    as invalid rather than read as a CSV with no usable column and passed as clean."""
    text = (first_line or "").lstrip(BOM + " \t\r\n")
    if text.startswith("{"):
        return "jsonl"
    if text:
        header = {cell.strip().strip('"').lower() for cell in text.split(",")}
        if {"event_id", "type"} <= header:
            return "csv"
    return "csv" if name.lower().endswith(".csv") and not text else "jsonl"


MAX_LEADING_BLANK_LINES = 10_000


def leading_lines(lines: Iterator[str]) -> tuple[list[str], str]:
    """The lines up to the first with content, and that line ("" if none within MAX_LEADING_BLANK_LINES):
    the format is detected from the first line with content, not from a blank line before it."""
    head: list[str] = []
    for line in lines:
        head.append(line)
        if line.strip(BOM + " \t\r\n"):
            return head, line
        if len(head) >= MAX_LEADING_BLANK_LINES:
            break
    return head, ""


def read_events(lines: Iterable[str], source: str, fmt: str) -> Iterator[tuple[int, Event | EventError]]:
    if fmt == "csv":
        return read_csv(lines, source)
    return read_jsonl(lines, source)


def bounded_lines(stream: IO[str]) -> Iterator[str]:
    """The stream's lines, none held longer than just over MAX_LINE_CHARS: a longer line is cut there
    (the parser then reports it as too long, on its own line number) and the rest of it is skipped, so a
    file of one 20 GB line costs a megabyte of memory rather than 20 GB. (Reading blocks of bytes and
    splitting them at line feeds was tried: slower than the text layer's readline, which is C.)"""
    limit = MAX_LINE_CHARS + 1
    while True:
        line = stream.readline(limit)
        if not line:
            return
        if len(line) >= limit and not line.endswith(("\n", "\r")):
            rest = line
            while len(rest) >= limit and not rest.endswith(("\n", "\r")):
                rest = stream.readline(limit)
        yield line


_UTF16_BOMS = ((codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))


def decode_events(binary: io.BufferedReader) -> io.TextIOWrapper:
    """Events files are UTF-8; a UTF-16 file is recognised by its BOM (what some spreadsheet exports
    write). Bytes that are not UTF-8 are kept as surrogates, so the line they are on is reported with the
    byte's value instead of being silently replaced or stopping the read. A UTF-8 BOM is dropped by the
    readers (``BOM``), so it is the same from a file, a pipe or a stream message."""
    buffered = binary
    head = buffered.peek(2)[:2]
    for bom, encoding in _UTF16_BOMS:
        if head == bom:
            buffered.read(2)
            return io.TextIOWrapper(buffered, encoding=encoding, errors="surrogateescape", newline="")
    return io.TextIOWrapper(buffered, encoding="utf-8", errors="surrogateescape", newline="")


@contextlib.contextmanager
def open_events(path: str, fmt: str | None) -> Iterator[tuple[Iterator[str], str, str]]:
    """(lines, source name, format) of an events file or '-' (stdin): how ``check`` and ``up`` both read
    one, so the same file gives them the same lines, line numbers and errors. The format is the one asked
    for, else what the content is (docs/cli.md). Raises OSError when the file cannot be opened."""
    if path == "-":
        binary = getattr(sys.stdin, "buffer", None)
        stream: TextIO = decode_events(binary) if binary is not None else sys.stdin
        source = "<stdin>"
    else:
        stream = decode_events(open(path, "rb"))  # noqa: SIM115
        source = path
    try:
        lines = bounded_lines(stream)
        head, first = leading_lines(lines)
        chosen = fmt or detect_format(source if path != "-" else "", first)
        yield itertools.chain(head, lines), source, chosen
    finally:
        if path != "-":
            stream.close()

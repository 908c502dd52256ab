"""A frozen copy of the parser's fast path as it was before the per-event cost work of issue 18 (main at
aa6eaf0): rules_engine/event_fast_path.py's builders and event_reader's orjson check, kept here ONLY so
bench/monitor_bench.py can time the old and the new parser in one process, alternating. Not used by the
product; never edit it to follow the product code (that would make the "before" figure meaningless)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any

from sandboxwatch.rules_engine.events import (
    INVESTOR_CLASSES,
    KYC_STATUSES,
    RAILS,
    SIDES,
    AccountEvent,
    Event,
    FundsEvent,
    PriceEvent,
    ReserveEvent,
    TradeEvent,
    TransferEvent,
)

FastBuilder = Callable[[dict[str, Any]], Event | None]

# Per type, the fields after the envelope in the dataclass's order: (JSON key, kind, argument).
# Kinds: text (required text), name (required text, interned), opt_text / opt_name (may be null or absent),
# choice (one of the argument's values), bool (null or a boolean), dec / dec_pos (decimal, >= 0 / > 0),
# opt_dec, onchain_text (required when rail is onchain, else optional), addr / opt_addr / onchain_addr (as
# text / opt_text / onchain_text, for an address-like text: also free of blanks, event_parser._addr), call
# (the generic path's helper named by the argument, given the object; skipped when the field is null or
# absent: None), required (the helper, always called),
# fee (fee and fee_asset: both fields of the dataclass).
_TRADE_LIKE_FEE = (("fee", "fee", None),)
FIELDS: dict[str, tuple[tuple[str, str, Any], ...]] = {
    "account": (
        ("account", "name", None),
        ("kyc_status", "choice", KYC_STATUSES),
        ("investor_class", "choice", INVESTOR_CLASSES),
        ("bank_account_verified", "bool", None),
        ("wallets", "call", "str_list"),
    ),
    "trade": (
        ("account", "name", None),
        ("side", "choice", SIDES),
        ("base", "name", None),
        ("quote", "name", None),
        ("quantity", "dec_pos", None),
        ("price", "dec_pos", None),
        ("counterparty_account", "opt_name", None),
        *_TRADE_LIKE_FEE,
    ),
    "deposit": (
        ("account", "name", None),
        ("asset", "name", None),
        ("amount", "dec_pos", None),
        ("rail", "choice", RAILS),
        ("chain", "onchain_addr", None),
        ("address", "onchain_addr", None),
        ("tx_hash", "onchain_addr", None),
        ("travel_rule", "call", "travel_rule"),
        *_TRADE_LIKE_FEE,
        ("completed_ts", "call", "completed_ts"),
    ),
    "transfer": (
        ("chain", "addr", None),
        ("tx_hash", "addr", None),
        ("log_index", "required", "log_index"),
        ("block", "required", "block"),
        ("from", "addr", None),
        ("to", "addr", None),
        ("asset", "name", None),
        ("amount", "dec", None),
        ("token", "opt_addr", None),
    ),
    "price": (
        ("base", "name", None),
        ("quote", "name", None),
        ("price", "dec_pos", None),
        ("source", "text", None),
    ),
    "reserve": (
        ("asset", "name", None),
        ("custody_balance", "dec", None),
        ("client_liabilities", "dec", None),
    ),
}
FIELDS["withdrawal"] = FIELDS["deposit"]
CLASSES: dict[str, type[Event]] = {
    "account": AccountEvent,
    "trade": TradeEvent,
    "deposit": FundsEvent,
    "withdrawal": FundsEvent,
    "transfer": TransferEvent,
    "price": PriceEvent,
    "reserve": ReserveEvent,
}


def _accepted(var: str, max_text: int) -> str:
    """The generic path's test for a text it accepts without its slow path (event_parser._str): ASCII and
    printable, which for ASCII means free of the control characters the contract refuses, and free of the
    space, the only blank an ASCII printable text can hold: every text field taken here is an identifier
    (event_parser._ident) or an address (event_parser._addr), which may hold none."""
    return (
        f"type({var}) is str and {var}.isascii() and {var} and len({var}) <= {max_text} and {var}.isprintable()"
        f" and ' ' not in {var}"
    )


def _field_code(index: int, key: str, kind: str, argument: Any, max_text: int) -> list[str]:
    v = f"f{index}"
    kind = {"addr": "text", "opt_addr": "opt_text", "onchain_addr": "onchain_text"}.get(kind, kind)
    ok = _accepted(v, max_text)
    get = f"{v} = g({key!r})"
    if kind in ("text", "name"):
        lines = [get, f"if not ({ok}):", "    return None"]
        return [*lines, f"{v} = intern({v})"] if kind == "name" else lines
    if kind in ("opt_text", "opt_name"):
        lines = [get, f"if {v} is not None:", f"    if not ({ok}):", "        return None"]
        return [*lines, f"    {v} = intern({v})"] if kind == "opt_name" else lines
    if kind == "onchain_text":
        return [get, f"if {v} is None and onchain or {v} is not None and not ({ok}):", "    return None"]
    if kind == "choice":
        values = f"CHOICES_{index}"
        return [get, f"if type({v}) is not str or {v} not in {values}:", "    return None"]
    if kind == "bool":
        return [get, f"if {v} is not None and type({v}) is not bool:", "    return None"]
    if kind in ("dec", "dec_pos"):
        return [f"{v} = dec(o, {key!r}{', positive=True' if kind == 'dec_pos' else ''})"]
    if kind == "opt_dec":
        return [f"{v} = None if g({key!r}) is None else dec(o, {key!r})"]
    if kind == "call":
        return [f"{v} = None if g({key!r}) is None else {argument}(o)"]
    if kind == "required":
        return [f"{v} = {argument}(o)"]
    if kind == "fee":
        # Both or neither (event_parser._fee); the fee's asset is a name.
        return [
            f"{v} = None if g('fee') is None else dec(o, 'fee')",
            f"{v}a = g('fee_asset')",
            f"if {v}a is not None:",
            f"    if not ({_accepted(v + 'a', max_text)}):",
            "        return None",
            f"    {v}a = intern({v}a)",
            f"elif {v} is not None:",
            "    return None",
        ]
    raise ValueError(f"unknown field kind {kind}")


def _source(event_type: str, max_text: int) -> tuple[str, dict[str, Any]]:
    fields = FIELDS[event_type]
    body: list[str] = []
    arguments: list[str] = []
    constants: dict[str, Any] = {}
    onchain = any(kind in ("onchain_text", "onchain_addr") for _, kind, _ in fields)
    for index, (key, kind, argument) in enumerate(fields):
        if kind == "choice":
            constants[f"CHOICES_{index}"] = argument
        body += _field_code(index, key, kind, argument, max_text)
        if onchain and key == "rail":
            body.append(f"onchain = f{index} == 'onchain'")
        arguments += [f"f{index}", f"f{index}a"] if kind == "fee" else [f"f{index}"]
    if "completed_ts" in (key for key, _, _ in fields):
        # The helper compares with ts, which the object holds as text: pass the parsed one.
        body = [line.replace("completed_ts(o)", "completed_ts(o, ts)") for line in body]
    envelope = [
        "g = o.get",
        "ts = g('ts')",
        "if ts is None:",
        "    return None",
        "try:",
        "    ts = parse_timestamp(ts)",
        "except ValueError:",
        "    return None",
        "event_id = g('event_id')",
        f"if not ({_accepted('event_id', max_text)}):",
        "    return None",
        "participant = g('participant')",
        f"if not ({_accepted('participant', max_text)}):",
        "    return None",
        "participant = intern(participant)",
        "site = g('site')",
        "if site is not None:",
        f"    if not ({_accepted('site', max_text)}):",
        "        return None",
        "    site = intern(site)",
        "extra = {} if o.keys() <= KNOWN else {k: v for k, v in o.items() if k not in KNOWN}",
    ]
    call = f"return CLASS(event_id, {event_type!r}, participant, ts, site, extra, {', '.join(arguments)})"
    lines = [
        f"def build_{event_type}(o):",
        *("    " + line for line in envelope),
        "    try:",
        *("        " + line for line in body),
        "    except FieldError:",
        "        return None",
        "    " + call,
    ]
    return "\n".join(lines) + "\n", constants


def compile_fast_path(
    known: Mapping[str, frozenset[str]], helpers: Mapping[str, Any], max_text: int
) -> dict[str, FastBuilder]:
    """Event type -> its builder. ``known``: the fields each type accepts (the rest go to ``extra``);
    ``helpers``: the generic path's FieldError, dec, parse_timestamp and the helpers the table calls."""
    builders: dict[str, FastBuilder] = {}
    for event_type in FIELDS:
        source, constants = _source(event_type, max_text)
        namespace: dict[str, Any] = {
            **helpers,
            **constants,
            "intern": sys.intern,
            "KNOWN": known[event_type],
            "CLASS": CLASSES[event_type],
        }
        # The source is made from the table above only (field names and kinds), never from input.
        exec(compile(source, f"<fast builder of {event_type}>", "exec"), namespace)
        builders[event_type] = namespace[f"build_{event_type}"]
    return builders


# event_reader's orjson check as it was (its _strings walk and _decode).
_LOW, _HIGH = -(10**18), 10**19


def _strings(value: Any) -> int:
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
            inner = _strings(item)
            if inner < 0:
                return -1
            strings += inner
    return strings


def _quoted(text: str) -> int:
    if "\\\\" in text:
        return -1
    return (text.count('"') - text.count('\\"')) // 2


def make_decode(orjson_loads: Callable[[str], Any], slow_decode: Callable[[str], Any]) -> Callable[[str], Any]:
    """event_reader._decode as it was, over the given decoders (orjson's and the bounded stdlib one)."""

    def _decode(text: str) -> tuple[Any, bool]:
        try:
            value = orjson_loads(text)
        except ValueError:
            return slow_decode(text), True
        if type(value) is dict or type(value) is list:
            strings = _strings(value)
            if strings >= 0 and (text.count('"') == 2 * strings if "\\" not in text else _quoted(text) == strings):
                return value, False
            return slow_decode(text), True
        return slow_decode(text), True

    return _decode


def make_parse_json_line(
    r: ModuleType, decode: Callable[[str], tuple[Any, bool]], event_from_dict: Callable[[Any], Any]
) -> Callable[[str, str, int], Any]:
    """event_reader.parse_json_line as it was (``r``: the event_reader module, for its unchanged helpers)."""

    def parse_json_line(text: str, source: str, line: int) -> Any:
        if len(text) > r.MAX_LINE_CHARS:
            return r.EventError(source, line, None, f"a line longer than {r.MAX_LINE_CHARS} characters", r._raw(text))
        if text[:1] == r.BOM:
            text = text[1:]
        if not text.isascii():
            problem = r._encoding_problem(text)
            if problem:
                return r.EventError(source, line, None, problem, r._raw(text))
        if (text.count("{") > r.MAX_DEPTH or text.count("[") > r.MAX_DEPTH) and r.too_deep(text, r.MAX_DEPTH):
            return r.EventError(source, line, None, f"nested deeper than {r.MAX_DEPTH} levels", r._raw(text))
        try:
            obj, slow = decode(text)
        except (ValueError, RecursionError) as exc:
            return r.EventError(source, line, None, f"not valid JSON: {str(exc)[:200]}", r._raw(text))
        if slow:
            where = r.repeated_key(obj)
            if where is not None:
                return r.error_for(source, line, text, obj, r.FieldError(where, r.repeated_key_reason(where)))
        try:
            event = event_from_dict(obj)
        except r.FieldError as exc:
            return r.error_for(source, line, text, obj, exc)
        event.digest = r.line_digest(text)
        return event

    return parse_json_line

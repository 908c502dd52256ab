"""The parser's fast path: one straight-line builder per common event type, compiled from a field table.

``event_from_dict`` validates field by field through small generic helpers: eight or more calls per event
just to accept a short ASCII text, a kwargs dict per fee, a generic envelope. On a stream of valid events
that was 40% of the monitor's time (issue 18). The builders here accept a line only when every field passes
the same test the generic path applies (inlined for texts, names and choices; the generic path's own
helpers for numbers, lists, travel-rule parties and completion times, so a decimal rule changed there
holds here too) and build the same event. On anything else they return None and the generic path runs
and says what is wrong: errors, their order and their wording stay the generic path's alone.
What a builder has accepted once it remembers, so the next event naming it costs a dictionary look-up
(issue 18: the parser was then 45k-70k lines per CPU second against orjson's 425k): names (accounts,
assets, participants, sites: thousands of distinct ones a day), decimal texts accepted as positive (prices
and amounts repeat), travel-rule parties, and the zone of a timestamp's offset. Only values the generic
path's own test accepted are remembered, keyed by the exact text, and every store is bounded (cleared when
full), so a remembered value is what the generic path would build from that text again; a timestamp takes
the generic path unless it has the canonical RFC 3339 shape (rules_engine/timestamps.py).
tests/test_event_fast_path.py holds the two paths equal over simulated days and their fuzzed mutants, and
tests/test_parser_differential.py over generated valid and mutated lines, parsed twice (remembered or not)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from decimal import Decimal
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
from sandboxwatch.rules_engine.money import short_positive_decimal

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


def _name_code(v: str, source: str, max_text: int, indent: str = "") -> list[str]:
    """``v`` = the interned name held in the object at ``source`` (an expression), or return None. A name
    remembered by ``NAMES`` passed the test before; a text that is not a string (a list, an object: not
    hashable) raises TypeError there, which the builder takes for a refusal."""
    lines = [] if source == v else [f"{v} = {source}"]
    lines += [
        f"{v}_ = NAMES_get({v})",
        f"if {v}_ is None:",
        f"    if not ({_accepted(v, max_text)}):",
        "        return None",
        f"    {v}_ = remember_name({v})",
        f"{v} = {v}_",
    ]
    return [indent + line for line in lines]


def _dec_code(v: str, key: str, positive: bool) -> list[str]:
    """``v`` = the field's decimal: remembered (``DECIMALS`` holds only texts accepted as greater than zero,
    which either kind accepts), else read (``Remembered.decimal``)."""
    return [
        f"{v} = DECIMALS_get(g({key!r}))",
        f"if {v} is None:",
        f"    {v} = decimal(o, {key!r}, {positive})",
    ]


def _field_code(index: int, key: str, kind: str, argument: Any, max_text: int) -> list[str]:
    v = f"f{index}"
    kind = {"addr": "text", "opt_addr": "opt_text", "onchain_addr": "onchain_text"}.get(kind, kind)
    ok = _accepted(v, max_text)
    get = f"{v} = g({key!r})"
    if kind == "text":
        return [get, f"if not ({ok}):", "    return None"]
    if kind == "name":
        return _name_code(v, f"g({key!r})", max_text)
    if kind == "opt_text":
        return [get, f"if {v} is not None:", f"    if not ({ok}):", "        return None"]
    if kind == "opt_name":
        return [get, f"if {v} is not None:", *_name_code(v, v, max_text, "    ")]
    if kind == "onchain_text":
        return [get, f"if {v} is None and onchain or {v} is not None and not ({ok}):", "    return None"]
    if kind == "choice":
        values = f"CHOICES_{index}"
        return [get, f"if type({v}) is not str or {v} not in {values}:", "    return None"]
    if kind == "bool":
        return [get, f"if {v} is not None and type({v}) is not bool:", "    return None"]
    if kind in ("dec", "dec_pos"):
        return _dec_code(v, key, kind == "dec_pos")
    if kind == "opt_dec":
        return [f"{v} = None", f"if g({key!r}) is not None:", *("    " + line for line in _dec_code(v, key, False))]
    if kind == "call":
        return [f"{v} = None if g({key!r}) is None else {argument}(o)"]
    if kind == "required":
        return [f"{v} = {argument}(o)"]
    if kind == "fee":
        # Both or neither (event_parser._fee); the fee's asset is a name.
        return [
            f"{v} = None",
            "if g('fee') is not None:",
            *("    " + line for line in _dec_code(v, "fee", False)),
            f"{v}a = g('fee_asset')",
            f"if {v}a is not None:",
            *_name_code(f"{v}a", f"{v}a", max_text, "    "),
            f"elif {v} is not None:",
            "    return None",
        ]
    raise ValueError(f"unknown field kind {kind}")


# Kinds whose field may be null or absent in an accepted object: the builder counts those present, so an
# object holding no other key is known to carry no extra field without comparing its keys with the known
# ones (``extra``). Every other kind's field is present and not null once accepted.
_OPTIONAL = frozenset({"opt_text", "opt_name", "opt_addr", "onchain_text", "onchain_addr", "bool", "opt_dec", "call"})


def _source(event_type: str, max_text: int) -> tuple[str, dict[str, Any]]:
    fields = FIELDS[event_type]
    body: list[str] = []
    arguments: list[str] = []
    constants: dict[str, Any] = {}
    optional: list[str] = ["site"]
    # event_id, type, participant, ts and every required field of the type.
    required = 4
    onchain = any(kind in ("onchain_text", "onchain_addr") for _, kind, _ in fields)
    for index, (key, kind, argument) in enumerate(fields):
        if kind == "choice":
            constants[f"CHOICES_{index}"] = argument
        body += _field_code(index, key, kind, argument, max_text)
        if onchain and key == "rail":
            body.append(f"onchain = f{index} == 'onchain'")
        arguments += [f"f{index}", f"f{index}a"] if kind == "fee" else [f"f{index}"]
        if kind == "fee":
            optional += [f"f{index}", f"f{index}a"]
        elif kind in _OPTIONAL:
            optional.append(f"f{index}")
        else:
            required += 1
    if "completed_ts" in (key for key, _, _ in fields):
        # The helper compares with ts, which the object holds as text: pass the parsed one.
        body = [line.replace("completed_ts(o)", "completed_ts(o, ts)") for line in body]
    envelope = [
        "g = o.get",
        # The canonical shape of a timestamp costs a look-up of its zone; any other goes through the generic
        # parse, which accepts or refuses it.
        "ts = canonical_timestamp(g('ts'))",
        "if ts is None:",
        "    ts = g('ts')",
        "    if ts is None:",
        "        return None",
        "    try:",
        "        ts = parse_timestamp(ts)",
        "    except ValueError:",
        "        return None",
        "event_id = g('event_id')",
        f"if not ({_accepted('event_id', max_text)}):",
        "    return None",
    ]
    names = [
        *_name_code("participant", "g('participant')", max_text),
        "site = g('site')",
        "if site is not None:",
        *_name_code("site", "site", max_text, "    "),
    ]
    present = " + ".join(f"({name} is not None)" for name in optional)
    extra = [
        f"if len(o) == {required} + {present}:",
        "    extra = {}",
        "else:",
        "    extra = {} if o.keys() <= KNOWN else {k: v for k, v in o.items() if k not in KNOWN}",
    ]
    call = f"return CLASS(event_id, {event_type!r}, participant, ts, site, extra, {', '.join(arguments)})"
    lines = [
        f"def build_{event_type}(o):",
        *("    " + line for line in envelope),
        "    try:",
        *("        " + line for line in names + body),
        # TypeError: a list or an object where a name or a number is expected (not hashable).
        "    except (FieldError, TypeError):",
        "        return None",
        *("    " + line for line in extra),
        "    " + call,
    ]
    return "\n".join(lines) + "\n", constants


# Bounds of what the builders remember: each store is cleared when it reaches its bound, so memory stays
# bounded whatever a stream holds (a name is at most MAX_TEXT characters, a decimal text 64): at most about
# 25 MB of names, 15 MB of decimals and 10 MB of parties of hostile maximal length, a few MB for a real day
# (3,000 names, 35,000 decimal texts and 3,000 parties in a simulated day of 60,000 events).
MAX_NAMES = 1 << 16
MAX_DECIMALS = 1 << 16
MAX_PARTIES = 1 << 13


class Remembered:
    """The accepted values the builders of one parser share (see the module doc)."""

    def __init__(self, dec: Callable[..., Decimal]) -> None:
        self.dec = dec  # event_parser._dec: the generic path's decimal field
        self.names: dict[str, str] = {}
        self.decimals: dict[str, Decimal] = {}
        self.travel_rules: dict[tuple[Any, ...], Any] = {}

    def clear(self) -> None:
        self.names.clear()
        self.decimals.clear()
        self.travel_rules.clear()

    def name(self, value: str) -> str:
        """Remember an accepted name (interned: see event_parser._name)."""
        names = self.names
        if len(names) >= MAX_NAMES:
            names.clear()
        value = names[value] = sys.intern(value)
        return value

    def decimal(self, o: Mapping[str, Any], key: str, positive: bool) -> Decimal:
        """The decimal at ``key``: a short positive one (money.short_positive_decimal) remembered, so a
        remembered text is valid for a field that must be positive and for one that may be zero alike; any
        other through the generic path's ``dec`` (raising its FieldError), not remembered."""
        text: Any = o.get(key)
        value = short_positive_decimal(text)
        if value is None:
            generic: Decimal = self.dec(o, key, positive=positive)
            return generic
        decimals = self.decimals
        if len(decimals) >= MAX_DECIMALS:
            decimals.clear()
        decimals[text] = value  # a str: short_positive_decimal takes no other
        return value

    def travel_rule(self, generic: Callable[[Mapping[str, Any]], Any]) -> Callable[[Mapping[str, Any]], Any]:
        """``generic`` (event_parser._travel_rule), remembered by what it reads: the two parties' name and
        account. Its result (frozen dataclasses) is shared by the events that carry the same parties."""
        rules = self.travel_rules

        def travel_rule(o: Mapping[str, Any]) -> Any:
            value = o.get("travel_rule")
            if type(value) is not dict:
                return generic(o)
            originator, beneficiary = value.get("originator"), value.get("beneficiary")
            if type(originator) is not dict or type(beneficiary) is not dict:
                return generic(o)
            a, b = originator.get("name"), originator.get("account")
            c, d = beneficiary.get("name"), beneficiary.get("account")
            # Each a text or null (spelled out: a generator over the four cost more than the look-up saves).
            if not (
                (a is None or type(a) is str)
                and (b is None or type(b) is str)
                and (c is None or type(c) is str)
                and (d is None or type(d) is str)
            ):
                return generic(o)
            key = (a, b, c, d)
            found = rules.get(key)
            if found is None:
                found = generic(o)  # raises FieldError as the generic path does: nothing remembered
                if len(rules) >= MAX_PARTIES:
                    rules.clear()
                rules[key] = found
            return found

        return travel_rule


def compile_fast_path(
    known: Mapping[str, frozenset[str]], helpers: Mapping[str, Any], max_text: int, remembered: Remembered
) -> dict[str, FastBuilder]:
    """Event type -> its builder. ``known``: the fields each type accepts (the rest go to ``extra``);
    ``helpers``: the generic path's FieldError, dec, parse_timestamp, canonical_timestamp and the helpers the
    table calls; ``remembered``: where the builders keep what they accepted."""
    builders: dict[str, FastBuilder] = {}
    shared = {
        **helpers,
        "travel_rule": remembered.travel_rule(helpers["travel_rule"]),
        "NAMES_get": remembered.names.get,
        "remember_name": remembered.name,
        "DECIMALS_get": remembered.decimals.get,
        "decimal": remembered.decimal,
    }
    for event_type in FIELDS:
        source, constants = _source(event_type, max_text)
        namespace: dict[str, Any] = {
            **shared,
            **constants,
            "KNOWN": known[event_type],
            "CLASS": CLASSES[event_type],
        }
        # The source is made from the table above only (field names and kinds), never from input.
        exec(compile(source, f"<fast builder of {event_type}>", "exec"), namespace)
        builders[event_type] = namespace[f"build_{event_type}"]
    return builders

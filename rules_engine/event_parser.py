"""Turns one decoded JSON object into a typed event, or says exactly which field is wrong and why."""

from __future__ import annotations

import re
import sys
import unicodedata
from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from sandboxwatch.rules_engine.event_fast_path import Remembered, compile_fast_path
from sandboxwatch.rules_engine.events import (
    INVESTOR_CLASSES,
    KYC_STATUSES,
    RAILS,
    REPORT_TYPES,
    SIDES,
    AccountEvent,
    Event,
    FundsEvent,
    ParticipantEvent,
    Party,
    PriceEvent,
    ReportEvent,
    ReserveEvent,
    RetractionEvent,
    TradeEvent,
    TransferEvent,
    TravelRuleInfo,
)
from sandboxwatch.rules_engine.money import ZERO, OversizeNumber, parse_event_decimal
from sandboxwatch.rules_engine.timestamps import canonical_timestamp, parse_timestamp

# Bounds (docs/events.md): every text field is valid Unicode of at most MAX_TEXT characters (ids, names,
# hashes and addresses are far shorter), a list holds at most MAX_ITEMS entries, and an integer field fits
# the store's signed 64-bit columns.
MAX_TEXT = 256
MAX_ITEMS = 10_000
MAX_INT = 2**63 - 1


class FieldError(ValueError):
    """A single field is missing or malformed; ``field`` names it for the error report."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


_ENVELOPE = ("event_id", "type", "participant", "ts", "site")
# event_id, type, participant, ts, site, extra: the positional head of every event dataclass.
Envelope = tuple[str, str, str, datetime, str | None, dict[str, Any]]


def _str(obj: Mapping[str, Any], name: str) -> str:
    value = obj.get(name)
    # isprintable: for ASCII text, free of the control characters (U+0000..U+001F, U+007F)
    if type(value) is str and value.isascii() and value and len(value) <= MAX_TEXT and value.isprintable():
        return value
    if value is None:
        raise FieldError(name, "required field is missing")
    return _text(value, name)


def _text(value: object, name: str) -> str:
    """The slow path of ``_str``: non-ASCII, over-long, empty or not a string at all."""
    if not isinstance(value, str):
        raise FieldError(name, f"must be a string, not {type(value).__name__}")
    if not value:
        raise FieldError(name, "must not be empty")
    if len(value) > MAX_TEXT:
        raise FieldError(name, f"a text of {len(value)} characters is longer than {MAX_TEXT}")
    problem = unicode_problem(value) or hidden_character(value)
    if problem:
        raise FieldError(name, problem)
    return value


def unicode_problem(value: str) -> str | None:
    """Why a text cannot be written out as UTF-8 (a lone surrogate from a ``\\ud800`` escape), or None."""
    if value.isascii():
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"not valid Unicode: lone surrogate U+{ord(value[exc.start]):04X} at character {exc.start + 1}"
    return None


# Characters no identifier, code or name of an event may hold (docs/events.md, Bounds): control characters
# (C0, DEL, C1), which break reports, logs and terminals, and the bidirectional embeddings, overrides and
# isolates, which make a text display as something else than it is ("acc-1\u202e9-cca" reads as another
# account). Both are refused with the character's position, never stripped (that would merge two ids).
_HIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def hidden_character(value: str) -> str | None:
    """Why a text is refused for a control or bidirectional formatting character, or None."""
    if value.isascii() and value.isprintable():
        return None
    found = _HIDDEN.search(value)
    if found is None:
        return None
    char = ord(found.group())
    kind = "a bidirectional formatting character" if char > 0x9F else "a control character"
    return f"holds {kind} U+{char:04X} at character {found.start() + 1}"


# Identifiers and address-like texts are matched exactly: an account, asset, participant, site or event id
# against the licence's lists and each other, an address against the sanctions blocklist and the accounts'
# registered wallets. A blank or invisible character in one ("acc-1\u200b", " USDT", "0x..dead\u200b") would
# make it a different key that escapes its rule (an unlisted asset no allowed_assets list names, an account
# whose limits start from zero, a listed address that misses its match). Such a text is refused (docs/events.md,
# Bounds), never stripped, so a valid one compares as before. Refused: whitespace (every Unicode space, U+00A0
# and U+3000 included), format characters (category Cf: U+200B..U+200D, U+2060, U+FEFF, U+00AD, ...), and the
# letters and symbols that display as nothing (the Hangul fillers, the braille blank U+2800, the combining
# grapheme joiner). An address or hash is also ASCII, as every chain's grammar writes it: a Cyrillic or Greek
# lookalike letter ("0x\u0430...", a Cyrillic a) would display as a listed address and never match it.
_INVISIBLE = (
    frozenset("\u034f\u115f\u1160\u2800\u3164\uffa0")
    .union(
        # The rest of Unicode's Default_Ignorable_Code_Point that is not whitespace or Cf: nonspacing marks that
        # render as nothing after any letter ("acc-1\ufe0f" shows as "acc-1"): the Khmer inherent vowels, the
        # Mongolian variation selectors, the variation selectors and their supplement, and the reserved ones.
        map(chr, (*range(0x17B4, 0x17B6), *range(0x180B, 0x1810), 0x2065, *range(0xFE00, 0xFE10)))
    )
    .union(map(chr, (*range(0xFFF0, 0xFFF9), *range(0xE0000, 0xE1000))))
)
_IDENTIFIER = "an identifier is matched exactly, so it may hold no blank or invisible character"
_ADDRESS = "an address or hash is matched exactly, so it may hold no blank or invisible character"


def _blank_or_invisible(value: str, why: str) -> str | None:
    for index, char in enumerate(value):
        if char.isspace() or unicodedata.category(char) in ("Zs", "Zl", "Zp", "Cf") or char in _INVISIBLE:
            kind = "whitespace" if char.isspace() else "an invisible character"
            return f"holds {kind} U+{ord(char):04X} at character {index + 1}: {why}"
    return None


def identifier_problem(value: str) -> str | None:
    """Why an identifier (account, asset, participant, site, event id, price source, ...) is refused for a
    blank or invisible character, or None."""
    if value.isascii() and " " not in value:
        return None
    return _blank_or_invisible(value, _IDENTIFIER)


def address_problem(value: str) -> str | None:
    """Why an address-like text is refused for a blank, an invisible or a non-ASCII character, or None."""
    if value.isascii() and " " not in value:
        return None
    problem = _blank_or_invisible(value, _ADDRESS)
    if problem is not None:
        return problem
    index, char = next((i, c) for i, c in enumerate(value) if not c.isascii())
    name = unicodedata.name(char, "")
    return (
        f"holds the non-ASCII character U+{ord(char):04X}{f' ({name})' if name else ''} at character "
        f"{index + 1}: an address or hash is written in ASCII, so a lookalike letter cannot pass for a listed one"
    )


def _ident(obj: Mapping[str, Any], name: str) -> str:
    """An identifier: a text field free of blanks and invisible characters."""
    value = _str(obj, name)
    if " " in value or not value.isascii():
        problem = identifier_problem(value)
        if problem:
            raise FieldError(name, problem)
    return value


def _addr(obj: Mapping[str, Any], name: str) -> str:
    """An address-like text: a text field free of blanks and invisible characters."""
    value = _str(obj, name)
    problem = address_problem(value)
    if problem:
        raise FieldError(name, problem)
    return value


def _opt_addr(obj: Mapping[str, Any], name: str) -> str | None:
    if obj.get(name) is None:
        return None
    return _addr(obj, name)


def clean_text(value: object) -> str | None:
    """A text usable in a report (an error's event id or participant), or None."""
    if (
        isinstance(value, str)
        and 0 < len(value) <= MAX_TEXT
        and unicode_problem(value) is None
        and hidden_character(value) is None
    ):
        return value
    return None


def _name(obj: Mapping[str, Any], name: str) -> str:
    """An identifier that recurs across events (account, participant, asset, ...), interned: a day holds
    millions of events but thousands of distinct names, so every per-account table the rules keep finds its
    key by identity, and the parsed events share one copy of each name."""
    return sys.intern(_ident(obj, name))


def _opt_name(obj: Mapping[str, Any], name: str) -> str | None:
    if obj.get(name) is None:
        return None
    return _name(obj, name)


def _choice(obj: Mapping[str, Any], name: str, allowed: tuple[str, ...]) -> str:
    value = _str(obj, name)
    if value not in allowed:
        raise FieldError(name, f"must be one of {', '.join(allowed)}, not {value!r}")
    return value


def _dec(obj: Mapping[str, Any], name: str, *, positive: bool = False) -> Decimal:
    value = obj.get(name)
    if value is None:
        raise FieldError(name, "required field is missing")
    try:
        result = parse_event_decimal(value)
    except ValueError as exc:
        raise FieldError(name, str(exc)) from None
    if positive and result <= ZERO:
        raise FieldError(name, f"must be greater than zero, not {value}")
    if result < ZERO:
        raise FieldError(name, f"must not be negative, not {value}")
    return result


def _opt_dec(obj: Mapping[str, Any], name: str) -> Decimal | None:
    if obj.get(name) is None:
        return None
    return _dec(obj, name)


def _int(obj: Mapping[str, Any], name: str, minimum: int = 0) -> int:
    value = obj.get(name)
    if value is None:
        raise FieldError(name, "required field is missing")
    if isinstance(value, OversizeNumber):
        raise FieldError(name, f"a {value.digits}-digit integer is larger than {MAX_INT}")
    if isinstance(value, bool) or not isinstance(value, int):
        raise FieldError(name, f"must be an integer, not {type(value).__name__}")
    if value < minimum:
        raise FieldError(name, "must not be negative" if minimum == 0 else f"must be at least {minimum}")
    if value > MAX_INT:
        raise FieldError(name, f"must be at most {MAX_INT}")
    return value


def _str_list(
    obj: Mapping[str, Any], name: str, *, addresses: bool = False, identifiers: bool = False
) -> tuple[str, ...] | None:
    value = obj.get(name)
    if value is None:
        return None
    if not isinstance(value, list):
        raise FieldError(name, "must be a list of strings")
    if len(value) > MAX_ITEMS:
        raise FieldError(name, f"a list of {len(value)} items is longer than {MAX_ITEMS}")
    for index, item in enumerate(value):
        if not (type(item) is str and 0 < len(item) <= MAX_TEXT and item.isascii() and item.isprintable()):
            _text(item, f"{name}[{index}]")
        problem = address_problem(item) if addresses else identifier_problem(item) if identifiers else None
        if problem:
            raise FieldError(f"{name}[{index}]", problem)
    return tuple(value)


def _party(value: Any, name: str) -> Party | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise FieldError(name, "must be an object with name and account")
    party_name, account = value.get("name"), value.get("account")
    for key, item in (("name", party_name), ("account", account)):
        plain = type(item) is str and item.isascii() and len(item) <= MAX_TEXT and item.isprintable()
        if item is not None and not plain and item != "":
            _text(item, f"{name}.{key}")
    return Party(name=party_name or None, account=account or None)


def _travel_rule(obj: Mapping[str, Any]) -> TravelRuleInfo | None:
    value = obj.get("travel_rule")
    if value is None:
        return None
    if not isinstance(value, dict):
        raise FieldError("travel_rule", "must be an object with originator and beneficiary")
    return TravelRuleInfo(
        originator=_party(value.get("originator"), "travel_rule.originator"),
        beneficiary=_party(value.get("beneficiary"), "travel_rule.beneficiary"),
    )


def _account(o: Mapping[str, Any], env: Envelope) -> Event:
    verified = o.get("bank_account_verified")
    if verified is not None and not isinstance(verified, bool):
        raise FieldError("bank_account_verified", "must be true or false")
    return AccountEvent(
        *env,
        account=_name(o, "account"),
        kyc_status=_choice(o, "kyc_status", KYC_STATUSES),
        investor_class=_choice(o, "investor_class", INVESTOR_CLASSES),
        bank_account_verified=verified,
        wallets=_str_list(o, "wallets", addresses=True),
    )


def _trade(o: Mapping[str, Any], env: Envelope) -> Event:
    return TradeEvent(
        *env,
        account=_name(o, "account"),
        side=_choice(o, "side", SIDES),
        base=_name(o, "base"),
        quote=_name(o, "quote"),
        quantity=_dec(o, "quantity", positive=True),
        price=_dec(o, "price", positive=True),
        counterparty_account=_opt_name(o, "counterparty_account"),
        **_fee(o),
    )


def _fee(o: Mapping[str, Any]) -> dict[str, Any]:
    fee, fee_asset = _opt_dec(o, "fee"), _opt_name(o, "fee_asset")
    if fee is not None and fee_asset is None:
        raise FieldError("fee_asset", "required with fee: the asset the fee was charged in")
    return {"fee": fee, "fee_asset": fee_asset}


def _completed_ts(o: Mapping[str, Any], ts: datetime) -> datetime | None:
    value = o.get("completed_ts")
    if value is None:
        return None
    try:
        completed = parse_timestamp(value)
    except ValueError as exc:
        raise FieldError("completed_ts", str(exc)) from None
    if completed < ts:
        raise FieldError("completed_ts", f"{value} is before ts: completion cannot precede the request")
    return completed


def _funds(o: Mapping[str, Any], env: Envelope) -> Event:
    rail = _choice(o, "rail", RAILS)
    onchain = rail == "onchain"
    return FundsEvent(
        *env,
        account=_name(o, "account"),
        asset=_name(o, "asset"),
        amount=_dec(o, "amount", positive=True),
        rail=rail,
        chain=_addr(o, "chain") if onchain else _opt_addr(o, "chain"),
        address=_addr(o, "address") if onchain else _opt_addr(o, "address"),
        tx_hash=_addr(o, "tx_hash") if onchain else _opt_addr(o, "tx_hash"),
        travel_rule=_travel_rule(o),
        **_fee(o),
        completed_ts=_completed_ts(o, env[3]),
    )


def _transfer(o: Mapping[str, Any], env: Envelope) -> Event:
    return TransferEvent(
        *env,
        chain=_addr(o, "chain"),
        tx_hash=_addr(o, "tx_hash"),
        log_index=_int(o, "log_index", minimum=-1),  # -1: a native transfer, which has no log
        block=_int(o, "block"),
        from_address=_addr(o, "from"),
        to_address=_addr(o, "to"),
        asset=_name(o, "asset"),
        amount=_dec(o, "amount"),
        token=_opt_addr(o, "token"),
    )


def _price(o: Mapping[str, Any], env: Envelope) -> Event:
    return PriceEvent(
        *env,
        base=_name(o, "base"),
        quote=_name(o, "quote"),
        price=_dec(o, "price", positive=True),
        source=_ident(o, "source"),
    )


def _report(o: Mapping[str, Any], env: Envelope) -> Event:
    report_type = _choice(o, "report_type", REPORT_TYPES)
    refs = _str_list(o, "refs", identifiers=True)
    period = None if o.get("period") is None else _ident(o, "period")
    if report_type == "periodic" and period is None:
        raise FieldError("period", "required for a periodic report")
    if report_type != "periodic" and not refs:
        raise FieldError("refs", f"a {report_type} report must list the event ids it covers")
    return ReportEvent(*env, report_type=report_type, refs=refs or (), period=period)


def _reserve(o: Mapping[str, Any], env: Envelope) -> Event:
    return ReserveEvent(
        *env,
        asset=_name(o, "asset"),
        custody_balance=_dec(o, "custody_balance"),
        client_liabilities=_dec(o, "client_liabilities"),
    )


def _participant(o: Mapping[str, Any], env: Envelope) -> Event:
    event = ParticipantEvent(
        *env,
        charter_capital_vnd=_opt_dec(o, "charter_capital_vnd"),
        foreign_ownership_pct=_opt_dec(o, "foreign_ownership_pct"),
        institutional_ownership_pct=_opt_dec(o, "institutional_ownership_pct"),
    )
    if (
        event.charter_capital_vnd is None
        and event.foreign_ownership_pct is None
        and event.institutional_ownership_pct is None
    ):
        raise FieldError("charter_capital_vnd", "a participant event needs at least one fact")
    return event


def _retraction(o: Mapping[str, Any], env: Envelope) -> Event:
    return RetractionEvent(
        *env,
        retracts=_ident(o, "retracts"),
        reason=_str(o, "reason"),
        chain=sys.intern(_addr(o, "chain")),
        block=_int(o, "block"),
        block_hash=_opt_addr(o, "block_hash"),
    )


_BUILDERS: dict[str, Callable[[Mapping[str, Any], Envelope], Event]] = {
    "account": _account,
    "trade": _trade,
    "deposit": _funds,
    "withdrawal": _funds,
    "transfer": _transfer,
    "price": _price,
    "report": _report,
    "reserve": _reserve,
    "participant": _participant,
    "retraction": _retraction,
}

KNOWN_FIELDS: dict[str, frozenset[str]] = {
    "account": frozenset({"account", "kyc_status", "investor_class", "bank_account_verified", "wallets"}),
    "trade": frozenset(
        {"account", "side", "base", "quote", "quantity", "price", "counterparty_account", "fee", "fee_asset"}
    ),
    "deposit": frozenset(
        {"account", "asset", "amount", "rail", "chain", "address", "tx_hash", "travel_rule"}
        | {"fee", "fee_asset", "completed_ts"}
    ),
    "transfer": frozenset({"chain", "tx_hash", "log_index", "block", "from", "to", "asset", "amount", "token"}),
    "price": frozenset({"base", "quote", "price", "source"}),
    "report": frozenset({"report_type", "refs", "period"}),
    "reserve": frozenset({"asset", "custody_balance", "client_liabilities"}),
    "participant": frozenset({"charter_capital_vnd", "foreign_ownership_pct", "institutional_ownership_pct"}),
    "retraction": frozenset({"retracts", "reason", "chain", "block", "block_hash"}),
}
KNOWN_FIELDS["withdrawal"] = KNOWN_FIELDS["deposit"]
_ALLOWED = {kind: fields | frozenset(_ENVELOPE) for kind, fields in KNOWN_FIELDS.items()}


# A connector's report of a source record it could not convert (docs/events.md): a known type that is never an
# event to judge, always an invalid one carrying the connector's own reason.
INGEST_ERROR = "ingest_error"


def connector_reason(obj: Mapping[str, Any]) -> str:
    """The reason an ingest_error carries, worded the same in ``check`` and the stream worker (docs/events.md)."""
    origin = obj.get("origin") if isinstance(obj.get("origin"), str) else "a connector"
    reason = obj.get("reason") if isinstance(obj.get("reason"), str) else "no reason given"
    return f"ingest error reported by {origin}: {reason}"


def _reported_by_connector(obj: Mapping[str, Any]) -> FieldError:
    field = obj.get("field")
    return FieldError(field if isinstance(field, str) else "", connector_reason(obj))


def event_from_dict(obj: Any) -> Event:
    """Build the typed event; unknown extra fields are kept in ``extra`` as the contract requires."""
    if type(obj) is dict:
        # Valid lines of the common types take the fast path (rules_engine/event_fast_path.py); anything it
        # does not accept is judged below, which gives the error.
        kind = obj.get("type")
        fast = _FAST.get(kind) if type(kind) is str else None
        if fast is not None:
            event = fast(obj)
            if event is not None:
                return event
    if not isinstance(obj, dict):
        raise FieldError("", f"an event must be a JSON object, not {type(obj).__name__}")
    event_type = _name(obj, "type")
    builder = _BUILDERS.get(event_type)
    if event_type == INGEST_ERROR:
        raise _reported_by_connector(obj)
    if builder is None:
        raise FieldError("type", f"unknown event type {event_type[:40]!r}")
    try:
        ts = parse_timestamp(obj.get("ts")) if obj.get("ts") is not None else None
    except ValueError as exc:
        raise FieldError("ts", str(exc)) from None
    if ts is None:
        raise FieldError("ts", "required field is missing")
    known = _ALLOWED[event_type]
    extra = {} if obj.keys() <= known else {k: v for k, v in obj.items() if k not in known}
    envelope: Envelope = (
        _ident(obj, "event_id"),
        event_type,
        _name(obj, "participant"),
        ts,
        _opt_name(obj, "site"),
        extra,
    )
    return builder(obj, envelope)


# What the fast path accepted once (names, decimals, travel-rule parties), bounded: event_fast_path.Remembered.
REMEMBERED = Remembered(_dec)
_FAST = compile_fast_path(
    _ALLOWED,
    {
        "FieldError": FieldError,
        "dec": _dec,
        "parse_timestamp": parse_timestamp,
        "canonical_timestamp": canonical_timestamp,
        "str_list": lambda o: _str_list(o, "wallets", addresses=True),
        "travel_rule": _travel_rule,
        "completed_ts": _completed_ts,
        "log_index": lambda o: _int(o, "log_index", minimum=-1),
        "block": lambda o: _int(o, "block"),
    },
    MAX_TEXT,
    REMEMBERED,
)

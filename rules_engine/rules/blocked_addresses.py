"""Sanctions screening: no deposit, withdrawal or observed transfer may touch a listed address."""

from __future__ import annotations

from dataclasses import dataclass

from rules_engine.events import Event, FundsEvent, TransferEvent
from rules_engine.facts import Facts
from rules_engine.licence_params import ParamError, ParamReader
from rules_engine.rule_spec import RuleSpec
from rules_engine.rules.base import Findings, RuleKind, fixed


@dataclass(frozen=True, slots=True)
class Params:
    addresses: frozenset[str]


def _read_file(reader: ParamReader) -> list[str]:
    name = reader.text("file")
    path = reader.base_dir / name
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ParamError("file", f"cannot read address list {path}: {exc.strerror}") from None
    return [line.split("#", 1)[0].strip() for line in text.splitlines() if line.split("#", 1)[0].strip()]


def parse(reader: ParamReader) -> Params:
    if not reader.has("addresses") and not reader.has("file"):
        raise ParamError("addresses", "missing parameter (give addresses or file)")
    listed = list(reader.strings("addresses", required=False) or ())
    if reader.has("file"):
        listed.extend(_read_file(reader))
    if not listed:
        raise ParamError("addresses", "the address list is empty")
    return Params(frozenset(address.lower() for address in listed))


def check(rule: RuleSpec, event: Event, facts: Facts, state: None) -> Findings:
    blocked = rule.params.addresses
    if isinstance(event, FundsEvent):
        if event.address is None or event.address.lower() not in blocked:
            return None
        hits = [event.address]
        subject = event.account
    elif isinstance(event, TransferEvent):
        hits = [a for a in (event.from_address, event.to_address) if a.lower() in blocked]
        if not hits:
            return None
        subject = hits[0]
    else:
        return None
    return [
        rule.finding(
            subject=subject,
            ts=event.ts,
            key=event.event_id,
            evidence=(event.event_id,),
            message=f"{event.type} {event.event_id} involves blocked address {', '.join(hits)}.",
        )
    ]


KIND = RuleKind("blocked_addresses", parse, fixed("deposit", "withdrawal", "transfer"), check)

"""Sanctions screening: no deposit, withdrawal or observed transfer may touch a listed address."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from sandboxwatch.rules_engine.events import Event, FundsEvent, TransferEvent
from sandboxwatch.rules_engine.facts import Facts
from sandboxwatch.rules_engine.licence_params import ParamError, ParamReader, show
from sandboxwatch.rules_engine.reference_lists import (
    AddressList,
    ReferenceError,
    address_key,
    is_address,
    load_address_list,
)
from sandboxwatch.rules_engine.rule_spec import RuleSpec
from sandboxwatch.rules_engine.rules.base import Findings, RuleKind, fixed

if TYPE_CHECKING:
    from sandboxwatch.simulator.day_builder import Injection


@dataclass(frozen=True, slots=True)
class Params:
    inline: frozenset[str]
    # File-backed lists (e.g. written by `sandboxwatch sanctions import`): versioned reference data that the
    # monitor swaps between batches when the file changes (rules_engine/reference_lists.py).
    lists: tuple[AddressList, ...] = ()

    @property
    def addresses(self) -> frozenset[str]:
        return self.inline.union(*(listed.addresses for listed in self.lists))

    def listing(self, address: str) -> str | None:
        """Where an address is listed ("the licence", or the list version), or None."""
        key = address_key(address)
        if key in self.inline:
            return "the licence"
        if not self.lists:
            return None
        for listed in self.lists:
            if key in listed.addresses:
                return listed.version
        return None


def parse(reader: ParamReader) -> Params:
    if not reader.has("addresses") and not reader.has("file"):
        raise ParamError("addresses", "missing parameter (give addresses or file)")
    listed = reader.strings("addresses", required=False, names=False) or ()
    for position, address in enumerate(listed, start=1):
        if not is_address(address):
            raise ParamError(
                "addresses", f"item {position} ({show(address)}) is not an address (3 to 128 letters and digits)"
            )
    inline = frozenset(address_key(a) for a in listed)
    lists: tuple[AddressList, ...] = ()
    if reader.has("file"):
        try:
            lists = (load_address_list(reader.base_dir / reader.text("file")),)
        except ReferenceError as exc:
            raise ParamError("file", str(exc)) from None
    if not inline and not any(listed.addresses for listed in lists):
        raise ParamError("addresses", "the address list is empty")
    return Params(inline, lists)


def check(rule: RuleSpec, event: Event, facts: Facts, state: None) -> Findings:
    params: Params = rule.params
    if isinstance(event, FundsEvent):
        where = None if event.address is None else params.listing(event.address)
        if where is None:
            return None
        assert event.address is not None
        hits = [event.address]
        subject = event.account
    elif isinstance(event, TransferEvent):
        # Both ends looked up without building lists: nearly every transfer touches no listed address.
        at_from, at_to = params.listing(event.from_address), params.listing(event.to_address)
        if at_from is None and at_to is None:
            return None
        hits = [a for a, at in ((event.from_address, at_from), (event.to_address, at_to)) if at is not None]
        where = at_from if at_from is not None else at_to
        subject = hits[0]
    else:
        return None
    return [
        rule.finding(
            subject=subject,
            ts=event.ts,
            key=event.event_id,
            evidence=(event.event_id,),
            message=f"{event.type} {event.event_id} involves blocked address {', '.join(hits)} (listed in {where}).",
        )
    ]


def inject(sim: Injection, rule: RuleSpec) -> None:
    """The injected violation of a simulated day (simulator/)."""
    builder = sim.builder
    t = sim.t
    blocked = sorted(rule.params.addresses)[0]
    builder.block += 1
    row = builder.emit(
        "transfer",
        t + timedelta(minutes=7),
        chain="ethereum",
        tx_hash=builder.hex(64),
        log_index=1,
        block=builder.block,
        **{"from": sim.custody, "to": blocked},
        asset=builder.asset,
        amount="150",
        token=sim.token,
    )
    sim.add("blocked_addresses", "a custody transfer to a sanctioned address", [row])


# What the desk on duty does when a finding of this kind fires (the alert's runbook annotation).
RUNBOOK = (
    "Funds touched a sanctioned or blocked address: escalate immediately to the sanctions officer and "
    "order the participant to freeze the related accounts."
)

KIND = RuleKind(
    "blocked_addresses",
    parse,
    fixed("deposit", "withdrawal", "transfer"),
    check,
    runbook=RUNBOOK,
    inject=inject,
)

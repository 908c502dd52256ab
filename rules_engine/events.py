"""Typed canonical events (docs/events.md, version 1).

Plain slotted dataclasses rather than validated models: the parser validates once at the edge, and the
rules then read attributes at full speed on millions of events.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

EVENT_TYPES = (
    "account",
    "trade",
    "deposit",
    "withdrawal",
    "transfer",
    "price",
    "report",
    "reserve",
    "participant",
)
# Not in EVENT_TYPES: no rule judges a retraction; the engine checks it against the event it withdraws.
RETRACTION = "retraction"
# Events made by or for a customer: the ones geographic scope and customer rules look at.
CUSTOMER_TYPES = frozenset({"account", "trade", "deposit", "withdrawal"})
# Events that carry a value (rules_engine/valuation.py): the only ones a value rule's applies_to can name.
VALUE_BEARING = frozenset({"trade", "deposit", "withdrawal", "transfer"})
# Events that move value for a customer account.
TRANSACTION_TYPES = frozenset({"trade", "deposit", "withdrawal"})
KYC_STATUSES = ("pending", "verified", "rejected", "revoked")
INVESTOR_CLASSES = ("foreign", "domestic")
SIDES = ("buy", "sell")
RAILS = ("bank", "onchain")
REPORT_TYPES = ("large_value", "suspicious", "periodic")


@dataclass(slots=True)
class Event:
    event_id: str
    type: str
    participant: str
    ts: datetime
    site: str | None
    extra: dict[str, Any]
    # CRC-32 of the line it was parsed from (0: built in code), so the engine tells a re-delivery from a
    # conflicting duplicate without formatting the event again (rules_engine/event_digest.py).
    digest: int = field(default=0, init=False, repr=False, compare=False)


@dataclass(slots=True)
class AccountEvent(Event):
    account: str
    kyc_status: str
    investor_class: str
    bank_account_verified: bool | None
    wallets: tuple[str, ...] | None


@dataclass(slots=True)
class TradeEvent(Event):
    account: str
    side: str
    base: str
    quote: str
    quantity: Decimal
    price: Decimal
    counterparty_account: str | None
    # What the venue charged for the trade, in ``fee_asset`` (often not the base or quote); not in the value.
    fee: Decimal | None = None
    fee_asset: str | None = None


@dataclass(slots=True, frozen=True)
class Party:
    name: str | None
    account: str | None


@dataclass(slots=True, frozen=True)
class TravelRuleInfo:
    originator: Party | None
    beneficiary: Party | None


@dataclass(slots=True)
class FundsEvent(Event):
    """A deposit or a withdrawal: the same fields, told apart by ``type``."""

    account: str
    asset: str
    amount: Decimal
    rail: str
    chain: str | None
    address: str | None
    tx_hash: str | None
    travel_rule: TravelRuleInfo | None
    # A withdrawal's network fee in ``fee_asset``, on top of ``amount`` (which is what the recipient gets).
    fee: Decimal | None = None
    fee_asset: str | None = None
    # When the money actually arrived or left; ``ts`` is when the venue first recorded the request.
    completed_ts: datetime | None = None


@dataclass(slots=True)
class TransferEvent(Event):
    chain: str
    tx_hash: str
    log_index: int
    block: int
    from_address: str
    to_address: str
    asset: str
    amount: Decimal
    token: str | None


@dataclass(slots=True)
class PriceEvent(Event):
    base: str
    quote: str
    price: Decimal
    source: str


@dataclass(slots=True)
class ReportEvent(Event):
    report_type: str
    refs: tuple[str, ...]
    period: str | None


@dataclass(slots=True)
class ReserveEvent(Event):
    asset: str
    custody_balance: Decimal
    client_liabilities: Decimal


@dataclass(slots=True)
class ParticipantEvent(Event):
    charter_capital_vnd: Decimal | None
    foreign_ownership_pct: Decimal | None
    institutional_ownership_pct: Decimal | None


@dataclass(slots=True)
class RetractionEvent(Event):
    """A chain connector withdrawing its own earlier observation (its block left the canonical chain)."""

    retracts: str
    reason: str
    chain: str
    block: int
    block_hash: str | None


@dataclass(slots=True, frozen=True)
class EventError:
    """Why one input line could not become an event; carries enough to find and fix the line."""

    source: str
    line: int
    field: str | None
    reason: str
    raw: str
    event_id: str | None = None
    participant: str | None = None
    ts: datetime | None = None
    # Set for a Kafka message read with no file behind it: ``line`` is then its offset in this partition.
    partition: int | None = None

    @property
    def where(self) -> str:
        """How a finding names the input: a file's line, or a message's offset and partition."""
        if self.partition is not None:
            return f"offset {self.line} of partition {self.partition}"
        return f"line {self.line}"

    def describe(self) -> str:
        where = f"{self.source}:{self.line}"
        what = f"field '{self.field}': " if self.field else ""
        return f"{where}: {what}{self.reason}"


def account_of(event: Event) -> str | None:
    """The customer account an event concerns, for rules that key state by account."""
    return getattr(event, "account", None)

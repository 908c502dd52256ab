"""Writing a simulated day's events: the running ids, the event rows and the reference prices while a
scenario is built, and the Injection each rule kind's ``inject`` (rules_engine/rules/<kind>.py) writes its
violation with."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from typing import Any

from sandboxwatch.rules_engine.events import INVESTOR_CLASSES
from sandboxwatch.rules_engine.licence import Licence
from sandboxwatch.rules_engine.money import decimal_text
from sandboxwatch.rules_engine.rule_spec import RuleSpec
from sandboxwatch.rules_engine.rules.periodic_report import due_moment, period_label

Row = dict[str, Any]
_CENT = Decimal("0.01")
_CUSTODY = "0x5a0b54d5dc17e0aadc383d2db43b0a0d3e029c4c"
_TOKEN = "0xdac17f958d2ee523a2206206994597c13d831ec7"


@dataclass(frozen=True)
class SimulationConfig:
    accounts: int = 3000
    seed: int = 1
    day: str | None = None
    target_events: int = 0
    violations: bool = True
    duplicate_rate: float = 0.001


@dataclass
class Violation:
    rules: list[str]
    what: str
    evidence: list[str] = field(default_factory=list)
    subject: str | None = None


@dataclass
class Scenario:
    rows: list[Row]
    violations: list[Violation]
    injected: set[str]
    start: datetime
    end: datetime
    # Rule kinds whose violation was left out, with why (a sized day too small to hold it).
    not_injected: list[str] = field(default_factory=list)


class SimulationTooSmall(ValueError):
    """``target_events`` below what the licence's fixed events and injected violations need."""


class DayBuilder:
    """Holds the running ids and the event list while a scenario is written."""

    def __init__(self, licence: Licence, config: SimulationConfig) -> None:
        self.licence = licence
        self.config = config
        self.rng = random.Random(config.seed)
        self.rows: list[Row] = []
        self.counter = 0
        self.block = 21_000_000
        self.rules = {rule.kind: rule for rule in licence.rules}
        self.tz = licence.header.valid_from.tzinfo
        self.currency = licence.header.reporting_currency
        self.sites = sorted(self._param("allowed_sites", "sites", frozenset({"HQ"})))
        listed_assets = self._param("allowed_assets", "assets", frozenset({"USDT", "USDC"}))
        self.asset = "USDT" if "USDT" in listed_assets else sorted(listed_assets)[0]
        self.sources = list(self._param("price_deviation", "sources", ("binance",)))
        classes = self._param("investor_class", "classes", frozenset(INVESTOR_CLASSES))
        self.classes = sorted(classes)
        self.prices: dict[str, Decimal] = {}
        self.price_series: list[tuple[datetime, Decimal]] = []
        self.not_injected: list[str] = []

    def _param(self, kind: str, name: str, default: Any) -> Any:
        rule = self.rules.get(kind)
        return getattr(rule.params, name) if rule is not None else default

    def rule(self, kind: str) -> RuleSpec | None:
        return self.rules.get(kind)

    def next_id(self, prefix: str = "ev") -> str:
        self.counter += 1
        return f"{prefix}-{self.counter:08d}"

    def emit(self, event_type: str, ts: datetime, **fields: Any) -> Row:
        row: Row = {
            "event_id": fields.pop("event_id", None) or self.next_id(),
            "type": event_type,
            "participant": self.licence.participant,
            "ts": ts.isoformat(),
        }
        row.update({k: v for k, v in fields.items() if v is not None})
        row["_ts"] = ts
        self.rows.append(row)
        return row

    def hex(self, length: int) -> str:
        return "0x" + "".join(self.rng.choice("0123456789abcdef") for _ in range(length))

    def reference(self, ts: datetime) -> Decimal:
        """The reference price in force at ts (the series is built before any trade)."""
        low, high = 0, len(self.price_series)
        while low < high:
            mid = (low + high) // 2
            if self.price_series[mid][0] <= ts:
                low = mid + 1
            else:
                high = mid
        return self.price_series[max(low - 1, 0)][1]

    def account(self, ts: datetime, name: str, *, kyc: str = "verified", wallets: int = 1) -> Row:
        return self.emit(
            "account",
            ts,
            site=self.rng.choice(self.sites),
            account=name,
            kyc_status=kyc,
            investor_class=self.rng.choice(self.classes),
            bank_account_verified=True,
            wallets=[self.hex(40) for _ in range(wallets)],
        )

    def travel(self, account: str) -> Row:
        return {
            "originator": {"name": f"Customer {account}", "account": account},
            "beneficiary": {"name": f"Customer {account}", "account": account},
        }

    def trade(self, ts: datetime, account: str, value: Decimal, **overrides: Any) -> Row:
        price = overrides.pop("price", None) or self.reference(ts) * (1 + Decimal(self.rng.randint(-40, 40)) / 10000)
        price = price.quantize(Decimal(1))
        quantity = max((value / price).quantize(_CENT, rounding=ROUND_DOWN), _CENT)
        fields: Row = {
            "site": self.rng.choice(self.sites),
            "account": account,
            "side": self.rng.choice(("buy", "sell")),
            "base": self.asset,
            "quote": self.currency,
            "quantity": decimal_text(quantity),
            "price": decimal_text(price),
        }
        fields.update(overrides)
        return self.emit("trade", ts, **fields)

    def bank(self, kind: str, ts: datetime, account: str, amount: Decimal, **overrides: Any) -> Row:
        fields: Row = {
            "site": self.rng.choice(self.sites),
            "account": account,
            "asset": self.currency,
            "amount": decimal_text(amount.quantize(Decimal(1000))),
            "rail": "bank",
        }
        fields.update(overrides)
        return self.emit(kind, ts, **fields)

    def onchain(
        self, kind: str, ts: datetime, account: str, address: str, value: Decimal, *, travel: bool = True
    ) -> Row:
        amount = max((value / self.reference(ts)).quantize(_CENT, rounding=ROUND_DOWN), _CENT)
        tx_hash = self.hex(64)
        row = self.emit(
            kind,
            ts,
            site=self.rng.choice(self.sites),
            account=account,
            asset=self.asset,
            amount=decimal_text(amount),
            rail="onchain",
            chain="ethereum",
            address=address,
            tx_hash=tx_hash,
            travel_rule=self.travel(account) if travel else None,
        )
        sender, receiver = (_CUSTODY, address) if kind == "withdrawal" else (address, _CUSTODY)
        self.block += 1
        self.emit(
            "transfer",
            ts + timedelta(seconds=12),
            chain="ethereum",
            tx_hash=tx_hash,
            log_index=0,
            block=self.block,
            **{"from": sender, "to": receiver},
            asset=self.asset,
            amount=decimal_text(amount),
            token=_TOKEN,
        )
        return row


class Injection:
    """What a rule kind's ``inject`` (rules_engine/rules/<kind>.py) writes its violation with: the scenario
    being built, the moment injections happen, and the helpers they share. Every injected violation lives on
    accounts of its own (``bad_account``), so a test can demand that it, and nothing else, is found."""

    custody = _CUSTODY
    token = _TOKEN

    def __init__(
        self, builder: DayBuilder, start: datetime, end: datetime, clean_accounts: int, room: int | None = None
    ) -> None:
        self.builder = builder
        self.rules = builder.rules
        self.start = start
        self.end = end
        self.clean_accounts = clean_accounts
        # At most this many extra sign-ups for the customer cap (a sized day); None: no limit.
        self.room = room
        self.t = start + timedelta(hours=2)
        self.small = Decimal(2_000_000)
        # Accounts opened verified for injections: the max_accounts injection (last) counts them.
        self.verified_bad = 0
        self.violations: list[Violation] = []

    def bad_account(self, kind: str, at: datetime, **kw: Any) -> tuple[str, Row]:
        name = f"bad-{kind.replace('_', '-')}"
        row = self.builder.account(at, name, **kw)
        if kw.get("kyc", "verified") == "verified":
            self.verified_bad += 1
        return name, row

    def add(
        self, kind: str, what: str, rows: list[Row], extra: tuple[str, ...] = (), subject: str | None = None
    ) -> None:
        """The ground truth of one violation: the rule it breaks (and ``extra`` kinds it necessarily breaks
        too), what it is, its events, and the subject of a finding that has no evidence event."""
        rules = self.rules
        rule_ids = [rules[kind].id] + [rules[k].id for k in extra if k in rules]
        self.violations.append(Violation(rule_ids, what, [r["event_id"] for r in rows], subject))

    def limit(self, kind: str, name: str) -> Decimal:
        rule = self.builder.rule(kind)
        return getattr(rule.params, name) if rule is not None else Decimal(10) ** 15

    def window_of(self, kind: str) -> timedelta:
        rule = self.builder.rule(kind)
        return rule.params.window if rule is not None else timedelta(0)

    def value_rules_hit(self, value: Decimal) -> tuple[str, ...]:
        """Other value rules a single injected event of this value necessarily breaks as well."""
        hit = []
        if value > self.limit("max_transaction_value", "max"):
            hit.append("max_transaction_value")
        if value >= self.limit("large_value_report", "threshold"):
            hit.append("large_value_report")
        return tuple(hit)

    def report_if_large(self, row: Row, value: Decimal) -> None:
        """Injected events meant to break one rule get their large-value report, so they break only it."""
        rule = self.builder.rule("large_value_report")
        if rule is not None and value >= rule.params.threshold:
            self.builder.emit(
                "report", row["_ts"] + timedelta(hours=1), report_type="large_value", refs=[row["event_id"]]
            )

    def due_period(self) -> str | None:
        return due_period(self.builder, self.start, self.end)


def due_period(builder: DayBuilder, start: datetime, end: datetime) -> str | None:
    """The label of the period whose periodic report falls due inside start..end, if the licence has one."""
    rule = builder.rule("periodic_report")
    if rule is None:
        return None
    months = 1 if rule.params.every == "month" else 3
    first = builder.licence.header.valid_from
    index = first.year * 12 + first.month - 1
    index -= index % months
    while True:
        due = due_moment(index, rule.params, first)
        if due > end:
            return None
        if start < due:
            return period_label(index, rule.params.every)
        index += months

"""A realistic simulated day of a pilot exchange, with injected violations and their ground truth.

The clean part is built to stay inside whatever limits the licence sets (amounts are derived from its
thresholds), and every injected violation lives on accounts of its own, so a test can demand both that
each violation is found and that nothing else is."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import Any

from sandboxwatch.rules_engine.events import INVESTOR_CLASSES
from sandboxwatch.rules_engine.licence import Licence
from sandboxwatch.rules_engine.money import decimal_text
from sandboxwatch.rules_engine.rule_spec import RuleSpec
from sandboxwatch.rules_engine.rules import RULE_KINDS
from sandboxwatch.rules_engine.rules.periodic_report import due_moment, period_label

Row = dict[str, Any]
_CENT = Decimal("0.01")
_BASE_PRICES = {"USDT": Decimal(26300), "USDC": Decimal(26280), "BTC": Decimal(2_500_000_000)}
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


class _Builder:
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


def _window(licence: Licence, config: SimulationConfig, builder: _Builder) -> datetime:
    """Start of the simulated 24 hours: noon before a periodic-report deadline, so that deadline is
    judged inside the day."""
    header = licence.header
    tz = header.valid_from.tzinfo
    if config.day:
        day = date.fromisoformat(config.day)
        return datetime(day.year, day.month, day.day, 12, tzinfo=tz)
    rule = builder.rule("periodic_report")
    if rule is not None:
        first = header.valid_from.year * 12 + header.valid_from.month - 1
        months = 1 if rule.params.every == "month" else 3
        index = first - first % months + months
        return due_moment(index, rule.params, header.valid_from) - timedelta(hours=12)
    start = header.valid_from + timedelta(days=60)
    return datetime(start.year, start.month, start.day, 12, tzinfo=tz)


def _clean_cap(builder: _Builder, sessions: int) -> Decimal:
    """Largest clean transaction value: far enough under every value limit that no clean account,
    however busy, can reach a cap, the large-value threshold or the structuring pattern."""
    limits = [Decimal(30_000_000)]
    for kind, name in (
        ("max_transaction_value", "max"),
        ("rolling_volume", "max"),
        ("large_value_report", "threshold"),
        ("structuring", "threshold"),
    ):
        rule = builder.rule(kind)
        if rule is not None:
            limits.append(getattr(rule.params, name) / (2 * max(sessions, 3)))
    return min(limits)


def _prices(builder: _Builder, start: datetime, end: datetime, step: timedelta = timedelta(minutes=1)) -> None:
    price = _BASE_PRICES.get(builder.asset, Decimal(26300))
    ts = start
    while ts <= end:
        price = (price * (1 + Decimal(builder.rng.randint(-5, 5)) / 10000)).quantize(Decimal(1))
        builder.price_series.append((ts, price))
        for source in builder.sources:
            builder.emit(
                "price",
                ts,
                base=builder.asset,
                quote=builder.currency,
                price=decimal_text(price),
                source=source,
            )
        ts += step


def _participant_facts(builder: _Builder, ts: datetime) -> None:
    rule = builder.rule("participant_limits")
    facts: Row = {"charter_capital_vnd": "12000000000000", "foreign_ownership_pct": "30"}
    if rule is not None:
        params = rule.params
        if params.min_charter_capital_vnd is not None:
            facts["charter_capital_vnd"] = decimal_text(params.min_charter_capital_vnd * 2)
        if params.max_foreign_ownership_pct is not None:
            facts["foreign_ownership_pct"] = decimal_text(params.max_foreign_ownership_pct / 2)
        if params.min_institutional_ownership_pct is not None:
            facts["institutional_ownership_pct"] = decimal_text(
                min(params.min_institutional_ownership_pct + 10, Decimal(100))
            )
    builder.emit("participant", ts, **facts)


def _clean_day(builder: _Builder, start: datetime, end: datetime, accounts: int, sessions: int) -> None:
    rng = builder.rng
    cap = _clean_cap(builder, sessions)
    floor = min(Decimal(500_000), cap / 4)
    names = [f"acc-{i:06d}" for i in range(accounts)]
    wallets: dict[str, list[str]] = {}
    for i, name in enumerate(names):
        row = builder.account(start + timedelta(milliseconds=i), name, wallets=rng.choice((1, 1, 2)))
        wallets[name] = row["wallets"]
    span = (end - start).total_seconds() - 4000

    def amount() -> Decimal:
        return (floor + (cap - floor) * Decimal(rng.random())).quantize(Decimal(1000))

    for name in names:
        for _ in range(sessions):
            t = start + timedelta(seconds=60 + rng.random() * span)
            step = timedelta(seconds=rng.randint(30, 900))
            counterparty = rng.choice(names) if rng.random() < 0.5 else None
            if counterparty == name:
                counterparty = None
            if rng.random() < 0.7:
                builder.bank("deposit", t, name, amount())
                builder.trade(t + step, name, amount(), side="buy", counterparty_account=counterparty)
                if rng.random() < 0.6:
                    builder.onchain("withdrawal", t + 2 * step, name, rng.choice(wallets[name]), amount())
            else:
                builder.onchain("deposit", t, name, rng.choice(wallets[name]), amount())
                builder.trade(t + step, name, amount(), side="sell", counterparty_account=counterparty)
                builder.bank("withdrawal", t + 2 * step, name, amount())
    hour = start
    while hour <= end:
        liabilities = Decimal(rng.randint(5_000_000, 9_000_000))
        builder.emit(
            "reserve",
            hour + timedelta(seconds=30),
            asset=builder.asset,
            custody_balance=decimal_text(liabilities * Decimal("1.05")),
            client_liabilities=decimal_text(liabilities),
        )
        hour += timedelta(hours=1)


class Injection:
    """What a rule kind's ``inject`` (rules_engine/rules/<kind>.py) writes its violation with: the scenario
    being built, the moment injections happen, and the helpers they share. Every injected violation lives on
    accounts of its own (``bad_account``), so a test can demand that it, and nothing else, is found."""

    custody = _CUSTODY
    token = _TOKEN

    def __init__(
        self, builder: _Builder, start: datetime, end: datetime, clean_accounts: int, room: int | None = None
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
        return _due_period(self.builder, self.start, self.end)


def _inject(
    builder: _Builder, start: datetime, end: datetime, clean_accounts: int, room: int | None = None
) -> list[Violation]:
    """One violation per rule kind in the licence, each on accounts used for nothing else; each kind's module
    writes its own (``inject``), in the registry's order. ``room``: at most this many extra sign-ups for the
    customer cap (a sized day); more leaves that violation out."""
    sim = Injection(builder, start, end, clean_accounts, room)
    for kind in RULE_KINDS.values():
        rule = builder.rules.get(kind.name)
        if rule is not None and kind.inject is not None:
            kind.inject(sim, rule)
    return sim.violations


def _due_period(builder: _Builder, start: datetime, end: datetime) -> str | None:
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


def build_scenario(licence: Licence, config: SimulationConfig) -> Scenario:
    builder = _Builder(licence, config)
    start = _window(licence, config, builder)
    end = start + timedelta(hours=24) - timedelta(seconds=1)
    if config.target_events:
        try:
            return _sized_scenario(builder, config, start, end)
        except _TooSmall:
            what = "reference prices, reserves" + (", injected violations" if config.violations else "")
            raise SimulationTooSmall(
                f"--events {config.target_events:,} is fewer than this licence's day needs: at least "
                f"{_minimum_events(licence, config):,} ({what} and one customer)"
            ) from None
    overhead = 1440 * len(builder.sources) + 30 + config.accounts
    sessions = 2
    if config.target_events:
        # About 3.4 events per account and session; round up so the target is a floor, not a guess.
        sessions = max(1, math.ceil((config.target_events - overhead) / (config.accounts * 3.3)))
    _prices(builder, start, end)
    _participant_facts(builder, start)
    first_injected = len(builder.rows)
    violations: list[Violation] = []
    if config.violations:
        violations = _inject(builder, start, end, config.accounts)
    injected = {row["event_id"] for row in builder.rows[first_injected:]}
    label = _due_period(builder, start, end)
    rule = builder.rule("periodic_report")
    if rule is not None and label is not None and not config.violations:
        builder.emit("report", start + timedelta(hours=3), report_type="periodic", period=label)
    _clean_day(builder, start, end, config.accounts, sessions)
    rows = builder.rows
    duplicates = [dict(row) for row in rows if builder.rng.random() < config.duplicate_rate]
    rows.extend(duplicates)
    rows.sort(key=lambda row: row["_ts"])
    return Scenario(rows=rows, violations=violations, injected=injected, start=start, end=end)


def _sized_scenario(builder: _Builder, config: SimulationConfig, start: datetime, end: datetime) -> Scenario:
    """Exactly ``target_events`` events, injected violations included: reference prices every few minutes
    (about a fifth of the day at most), hourly reserves, the violations, then clean accounts and their
    sessions until the count is reached (a last odd event is one more reference price). A violation that
    cannot fit (the customer cap needs as many sign-ups as the cap) is left out and named in the truth."""
    target = config.target_events
    sources = len(builder.sources)
    step = timedelta(minutes=max(1, math.ceil(1440 * sources / max(1, target // 5))))
    _prices(builder, start, end, step)
    _participant_facts(builder, start)
    hour = start
    while hour <= end:
        liabilities = Decimal(builder.rng.randint(5_000_000, 9_000_000))
        builder.emit(
            "reserve",
            hour + timedelta(seconds=30),
            asset=builder.asset,
            custody_balance=decimal_text(liabilities * Decimal("1.05")),
            client_liabilities=decimal_text(liabilities),
        )
        hour += timedelta(hours=1)
    duplicates = max(1, round(target * config.duplicate_rate)) if config.duplicate_rate else 0
    fixed = len(builder.rows) + duplicates + _INJECTED_ALLOWANCE
    accounts = min(config.accounts, (target - fixed) // 6)
    first_injected = len(builder.rows)
    violations: list[Violation] = []
    if config.violations:
        violations = _inject(builder, start, end, accounts, room=max(0, (target - fixed) // 2))
    injected = {row["event_id"] for row in builder.rows[first_injected:]}
    label = _due_period(builder, start, end)
    rule = builder.rule("periodic_report")
    if rule is not None and label is not None and not config.violations:
        builder.emit("report", start + timedelta(hours=3), report_type="periodic", period=label)
    budget = target - len(builder.rows) - duplicates - accounts
    if accounts < 1 or budget < 0:
        raise _TooSmall
    _sized_sessions(builder, start, end, accounts, budget)
    rows = builder.rows
    rows.extend(dict(row) for row in builder.rng.sample(rows, duplicates))
    rows.sort(key=lambda row: row["_ts"])
    return Scenario(rows, violations, injected, start, end, builder.not_injected)


class _TooSmall(Exception):
    pass


def _minimum_events(licence: Licence, config: SimulationConfig) -> int:
    """The smallest ``target_events`` that fits (found by trying: the price spacing depends on it)."""

    def fits(target: int) -> bool:
        sized = replace(config, target_events=target)
        builder = _Builder(licence, sized)
        start = _window(licence, sized, builder)
        try:
            _sized_scenario(builder, sized, start, start + timedelta(hours=24) - timedelta(seconds=1))
        except _TooSmall:
            return False
        return True

    low, high = config.target_events, max(config.target_events * 2, 256)
    while not fits(high):
        low, high = high, high * 2
    while high - low > 1:
        middle = (low + high) // 2
        if fits(middle):
            high = middle
        else:
            low = middle
    return high


# Events the injected violations other than the customer cap take, at most (about 50 with every rule kind).
_INJECTED_ALLOWANCE = 120


def _sized_sessions(builder: _Builder, start: datetime, end: datetime, accounts: int, budget: int) -> None:
    """``accounts`` sign-ups, then sessions of 2 or 4 events round the accounts until ``budget`` is spent."""
    rng = builder.rng
    sessions = max(1, math.ceil(budget / (2 * accounts)))
    cap = _clean_cap(builder, sessions)
    floor = min(Decimal(500_000), cap / 4)
    names = [f"acc-{i:06d}" for i in range(accounts)]
    wallets = {
        name: builder.account(start + timedelta(milliseconds=i), name)["wallets"] for i, name in enumerate(names)
    }
    span = (end - start).total_seconds() - 4000

    def amount() -> Decimal:
        return (floor + (cap - floor) * Decimal(rng.random())).quantize(Decimal(1000))

    turn = 0
    while budget >= 2:
        name = names[turn % accounts]
        turn += 1
        t = start + timedelta(seconds=60 + rng.random() * span)
        step = timedelta(seconds=rng.randint(30, 900))
        if budget < 4 or rng.random() < 0.5:
            builder.bank("deposit", t, name, amount())
            builder.trade(t + step, name, amount(), side="buy")
            budget -= 2
        else:
            builder.onchain("deposit", t, name, wallets[name][0], amount())
            builder.trade(t + step, name, amount(), side="sell")
            builder.bank("withdrawal", t + 2 * step, name, amount())
            budget -= 4
    if budget:
        ts = end - timedelta(seconds=30)
        price = builder.reference(ts)
        base, quote, source = builder.asset, builder.currency, builder.sources[0]
        builder.emit("price", ts, base=base, quote=quote, price=decimal_text(price), source=source)


def scenario_lines(scenario: Scenario) -> Iterator[str]:
    for row in scenario.rows:
        yield json.dumps({k: v for k, v in row.items() if k != "_ts"}, separators=(",", ":")) + "\n"


def truth_document(licence: Licence, scenario: Scenario) -> dict[str, Any]:
    return {
        "licence": licence.id,
        "participant": licence.participant,
        "start": scenario.start.isoformat(),
        "end": scenario.end.isoformat(),
        "events": len(scenario.rows),
        "violations": [
            {"rules": v.rules, "what": v.what, "evidence": v.evidence, "subject": v.subject}
            for v in scenario.violations
        ],
        "injected_events": sorted(scenario.injected),
        "not_injected": scenario.not_injected,
    }


def simulate_to_files(licence: Licence, config: SimulationConfig, out: Path, truth: Path | None) -> str:
    scenario = build_scenario(licence, config)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as handle:
        handle.writelines(scenario_lines(scenario))
    if truth is not None:
        truth.write_text(json.dumps(truth_document(licence, scenario), indent=2) + "\n", encoding="utf-8")
    return (
        f"wrote {len(scenario.rows)} events ({scenario.start.isoformat()} to {scenario.end.isoformat()}) "
        f"to {out}, with {len(scenario.violations)} injected violations"
        + (f" ({len(scenario.injected)} of the events)" if config.target_events else "")
        + "".join(f"; not injected: {note}" for note in scenario.not_injected)
        + (f"; ground truth in {truth}" if truth else "")
    )

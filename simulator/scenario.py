"""A realistic simulated day of a pilot exchange, with injected violations and their ground truth.

The clean part is built to stay inside whatever limits the licence sets (amounts are derived from its
thresholds), and every injected violation lives on accounts of its own, so a test can demand both that
each violation is found and that nothing else is."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import date, datetime, timedelta
from decimal import Decimal

from sandboxwatch.rules_engine.licence import Licence
from sandboxwatch.rules_engine.money import decimal_text
from sandboxwatch.rules_engine.rules import RULE_KINDS
from sandboxwatch.rules_engine.rules.periodic_report import due_moment
from sandboxwatch.simulator.day_builder import (
    DayBuilder,
    Injection,
    Row,
    Scenario,
    SimulationConfig,
    SimulationTooSmall,
    Violation,
    due_period,
)

_BASE_PRICES = {"USDT": Decimal(26300), "USDC": Decimal(26280), "BTC": Decimal(2_500_000_000)}


def _window(licence: Licence, config: SimulationConfig, builder: DayBuilder) -> datetime:
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


def _clean_cap(builder: DayBuilder, sessions: int) -> Decimal:
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


def _prices(builder: DayBuilder, start: datetime, end: datetime, step: timedelta = timedelta(minutes=1)) -> None:
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


def _participant_facts(builder: DayBuilder, ts: datetime) -> None:
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


def _clean_day(builder: DayBuilder, start: datetime, end: datetime, accounts: int, sessions: int) -> None:
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


def _inject(
    builder: DayBuilder, start: datetime, end: datetime, clean_accounts: int, room: int | None = None
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


def build_scenario(licence: Licence, config: SimulationConfig) -> Scenario:
    builder = DayBuilder(licence, config)
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
    label = due_period(builder, start, end)
    rule = builder.rule("periodic_report")
    if rule is not None and label is not None and not config.violations:
        builder.emit("report", start + timedelta(hours=3), report_type="periodic", period=label)
    _clean_day(builder, start, end, config.accounts, sessions)
    rows = builder.rows
    duplicates = [dict(row) for row in rows if builder.rng.random() < config.duplicate_rate]
    rows.extend(duplicates)
    rows.sort(key=lambda row: row["_ts"])
    return Scenario(rows=rows, violations=violations, injected=injected, start=start, end=end)


def _sized_scenario(builder: DayBuilder, config: SimulationConfig, start: datetime, end: datetime) -> Scenario:
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
    label = due_period(builder, start, end)
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
        builder = DayBuilder(licence, sized)
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


def _sized_sessions(builder: DayBuilder, start: datetime, end: datetime, accounts: int, budget: int) -> None:
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

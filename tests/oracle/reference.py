"""The slow, obvious reading of each stateful rule kind: at every event, its findings recomputed from the
whole history judged so far, with no state carried between events except that history.

The engine keeps incremental state (deques, running sums, heaps, cached deadlines); this module keeps a
list and rescans it. It shares only the finding record and its id with the engine, never a rule's logic,
so where the two disagree one of them has a bug. Kept in the order and the words of docs/licence.md.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sandboxwatch.rules_engine.builtin_findings import LATE_EVENT, PRICE_REFUSED, VALUATION_UNAVAILABLE
from sandboxwatch.rules_engine.engine import TYPE_RANK
from sandboxwatch.rules_engine.events import (
    AccountEvent,
    Event,
    FundsEvent,
    ParticipantEvent,
    PriceEvent,
    ReportEvent,
    ReserveEvent,
    TradeEvent,
)
from sandboxwatch.rules_engine.findings import finding_id
from sandboxwatch.rules_engine.licence import Licence
from sandboxwatch.rules_engine.money import rounded
from sandboxwatch.rules_engine.rule_spec import RuleSpec


@dataclass(frozen=True, order=True)
class Expected:
    """What a finding must say, in comparable form (timestamps keep their written offset)."""

    finding_id: str
    rule: str
    subject: str
    ts: str | None
    evidence: tuple[str, ...]
    observed: Decimal | None

    @classmethod
    def of(cls, finding: Any) -> Expected:
        ts = finding.ts.isoformat() if finding.ts is not None else None
        return cls(finding.finding_id, finding.rule, finding.subject, ts, tuple(finding.evidence), finding.observed)


@dataclass(frozen=True)
class Judged:
    """One event of the history with its position (the order the engine must have judged it in)."""

    index: int
    event: Event


History = Sequence[Judged]


def judged_order(arrivals: Sequence[Event]) -> list[Judged]:
    """The history as every path must judge it: first copy of each id, in (event time, facts first, arrival)
    order. Only valid for arrivals within the allowed lateness, which is what the property tests generate."""
    first: dict[str, tuple[int, Event]] = {}
    for position, event in enumerate(arrivals):
        first.setdefault(event.event_id, (position, event))
    ordered = sorted(first.values(), key=lambda pair: (pair[1].ts, TYPE_RANK.get(pair[1].type, 3), pair[0]))
    return [Judged(i, event) for i, (_, event) in enumerate(ordered)]


def _expect(
    licence: Licence,
    rule: str,
    key: str,
    subject: str,
    ts: datetime | None,
    evidence: Sequence[str],
    observed: Decimal | None = None,
) -> Expected:
    return Expected(
        finding_id(licence.id, rule, key), rule, subject, ts.isoformat() if ts else None, tuple(evidence), observed
    )


# valuation -----------------------------------------------------------------------------------------------
def _rate(asset: str, licence: Licence, at: Judged, history: History) -> Decimal | None:
    """Latest price of asset in currency at or before the event, among prices of the licence's trusted
    sources judged before it."""
    currency = licence.header.reporting_currency
    if asset == currency:
        return Decimal(1)
    best: tuple[datetime, int, Decimal] | None = None
    for prior in history[: at.index]:
        e = prior.event
        if (
            isinstance(e, PriceEvent)
            and e.source in licence.header.price_sources
            and (e.base, e.quote) == (asset, currency)
            and e.ts <= at.event.ts
            and (best is None or (e.ts, prior.index) > best[:2])
        ):
            best = (e.ts, prior.index, e.price)
    return best[2] if best else None


def value(at: Judged, licence: Licence, history: History) -> Decimal | None:
    e = at.event
    currency = licence.header.reporting_currency
    if isinstance(e, TradeEvent):
        if e.quote == currency:
            return e.quantity * e.price
        quote_rate = _rate(e.quote, licence, at, history)
        if quote_rate is not None:
            return e.quantity * e.price * quote_rate
        base_rate = _rate(e.base, licence, at, history)
        return e.quantity * base_rate if base_rate is not None else None
    if isinstance(e, FundsEvent):
        asset_rate = _rate(e.asset, licence, at, history)
        return e.amount * asset_rate if asset_rate is not None else None
    return None


def _account_at(account: str, at: Judged, history: History, inclusive: bool = False) -> AccountEvent | None:
    """The account's latest record (by event time, then judging order) judged before the event."""
    latest: AccountEvent | None = None
    for prior in history[: at.index + (1 if inclusive else 0)]:
        e = prior.event
        if isinstance(e, AccountEvent) and e.account == account and (latest is None or e.ts >= latest.ts):
            latest = e
    return latest


# the rule kinds ------------------------------------------------------------------------------------------
Oracle = Callable[[Licence, RuleSpec, History], list[Expected]]


def rolling_volume(licence: Licence, rule: RuleSpec, history: History) -> list[Expected]:
    """A finding at an event when the window ending at it, (ts - window, ts], sums over max with the event
    and at or under max without it."""
    p = rule.params
    found = []
    for at in history:
        e = at.event
        account = getattr(e, "account", None)
        if e.type not in p.applies_to or account is None:
            continue
        mine = value(at, licence, history)
        if mine is None:
            continue
        window = []
        for prior in history[: at.index]:
            x = prior.event
            if x.type in p.applies_to and getattr(x, "account", None) == account and e.ts - p.window < x.ts <= e.ts:
                v = value(prior, licence, history)
                if v is not None:
                    window.append((x.event_id, v))
        before = sum((v for _, v in window), Decimal(0))
        if before <= p.max < before + mine:
            ids = [i for i, _ in window] + [e.event_id]
            found.append(_expect(licence, rule.id, e.event_id, account, e.ts, ids[-100:], before + mine))
    return found


def structuring(licence: Licence, rule: RuleSpec, history: History) -> list[Expected]:
    """Per account and event type, events each under threshold: a finding at an event when the window
    ending at it holds >= min_count of them summing >= threshold, and did not without the event."""
    p = rule.params

    def meets(values: list[Decimal]) -> bool:
        return len(values) >= p.min_count and bool(sum(values, Decimal(0)) >= p.threshold)

    found = []
    for at in history:
        e = at.event
        account = getattr(e, "account", None)
        mine = value(at, licence, history) if e.type in p.applies_to and account is not None else None
        if mine is None or mine >= p.threshold:
            continue
        window = []
        for prior in history[: at.index]:
            x = prior.event
            if x.type == e.type and getattr(x, "account", None) == account and e.ts - p.window < x.ts <= e.ts:
                v = value(prior, licence, history)
                if v is not None and v < p.threshold:
                    window.append((x.event_id, v))
        values = [v for _, v in window]
        if meets([*values, mine]) and not meets(values):
            ids = [i for i, _ in window] + [e.event_id]
            assert account is not None
            found.append(_expect(licence, rule.id, e.event_id, account, e.ts, ids, sum(values, mine)))
    return found


def _in_term(licence: Licence, ts: datetime) -> bool:
    return licence.header.valid_from <= ts <= licence.header.valid_until


def large_value_report(licence: Licence, rule: RuleSpec, history: History) -> list[Expected]:
    """An event worth >= threshold is found once some in-term event is later than its deadline, unless a
    large_value report citing it has an event time from the event's to the deadline."""
    p = rule.params
    latest = max((j.event.ts for j in history if _in_term(licence, j.event.ts)), default=None)
    found = []
    for at in history:
        e = at.event
        if e.type not in p.applies_to:
            continue
        v = value(at, licence, history)
        if v is None or v < p.threshold:
            continue
        due = e.ts + p.deadline
        if latest is None or not latest > due:
            continue
        on_time = any(
            isinstance(r.event, ReportEvent)
            and r.event.report_type == "large_value"
            and e.event_id in r.event.refs
            and e.ts <= r.event.ts <= due
            for r in history
        )
        if not on_time:
            found.append(
                _expect(
                    licence, rule.id, e.event_id, getattr(e, "account", None) or e.participant, e.ts, (e.event_id,), v
                )
            )
    return found


def periodic_report(licence: Licence, rule: RuleSpec, history: History) -> list[Expected]:
    """Periods from the licence start whose due moment (end of due_day of the following period, licence
    time zone) lies after the first in-term event and before the last one, in the term, with no periodic
    report for the period at or before the due moment."""
    p = rule.params
    header = licence.header
    step = {"month": 3 if p.every == "quarter" else 1, "quarter": 3}[p.every]
    zone = header.valid_from.tzinfo
    in_term = [j.event.ts for j in history if _in_term(licence, j.event.ts)]
    if not in_term:
        return []
    first, last = in_term[0], max(in_term)

    def start_index(ts: datetime) -> int:
        index = ts.year * 12 + ts.month - 1
        return index - index % step

    def due(index: int) -> datetime:
        year, month0 = divmod(index + step, 12)
        return datetime(year, month0 + 1, 1, tzinfo=zone) + timedelta(days=p.due_day)

    def label(index: int) -> str:
        year, month0 = divmod(index, 12)
        return f"{year}-Q{month0 // 3 + 1}" if p.every == "quarter" else f"{year}-{month0 + 1:02d}"

    found = []
    index = start_index(header.valid_from)
    final = start_index(header.valid_until.astimezone(zone))
    while index <= final:
        moment = due(index)
        if moment >= first and moment < last:
            name = label(index)
            on_time = any(
                isinstance(r.event, ReportEvent)
                and r.event.report_type == "periodic"
                and r.event.period == name
                and r.event.ts <= moment
                for r in history
            )
            if not on_time:
                found.append(_expect(licence, rule.id, f"period:{name}", header.participant, moment, ()))
        index += step
    return found


def max_accounts(licence: Licence, rule: RuleSpec, history: History) -> list[Expected]:
    """At an account event: the account becomes verified (its latest record before the event was not, by
    event time) and the verified accounts then number more than max."""
    p = rule.params
    found = []
    for at in history:
        e = at.event
        if not isinstance(e, AccountEvent):
            continue
        before = _account_at(e.account, at, history)
        after = _account_at(e.account, at, history, inclusive=True)
        was = before is not None and before.kyc_status == "verified"
        now = after is not None and after.kyc_status == "verified"
        if was or not now:
            continue
        names = {j.event.account for j in history[: at.index + 1] if isinstance(j.event, AccountEvent)}
        verified = [
            n for n in names if (s := _account_at(n, at, history, inclusive=True)) and s.kyc_status == "verified"
        ]
        if len(verified) > p.max:
            found.append(_expect(licence, rule.id, e.event_id, e.account, e.ts, (e.event_id,), Decimal(len(verified))))
    return found


def kyc_required(licence: Licence, rule: RuleSpec, history: History) -> list[Expected]:
    found = []
    for at in history:
        e = at.event
        if not isinstance(e, TradeEvent | FundsEvent):
            continue
        account = e.account
        record = _account_at(account, at, history)
        ok = (
            record is not None
            and record.kyc_status == "verified"
            and (not rule.params.require_bank_account or record.bank_account_verified is True)
        )
        if not ok:
            found.append(_expect(licence, rule.id, e.event_id, account, e.ts, (e.event_id,)))
    return found


def investor_class(licence: Licence, rule: RuleSpec, history: History) -> list[Expected]:
    p = rule.params
    found = []
    for at in history:
        e = at.event
        if not isinstance(e, TradeEvent | FundsEvent):
            continue
        asset = e.base if isinstance(e, TradeEvent) else e.asset
        if p.assets is not None and asset not in p.assets:
            continue
        record = _account_at(e.account, at, history)
        if record is None or record.investor_class not in p.classes:
            found.append(_expect(licence, rule.id, e.event_id, e.account, e.ts, (e.event_id,)))
    return found


def registered_wallet(licence: Licence, rule: RuleSpec, history: History) -> list[Expected]:
    found = []
    for at in history:
        e = at.event
        if not isinstance(e, FundsEvent) or e.rail != "onchain" or e.address is None:
            continue
        record = _account_at(e.account, at, history)
        wallets = {w.lower() for w in (record.wallets or ())} if record else set()
        if e.address.lower() not in wallets:
            found.append(_expect(licence, rule.id, e.event_id, e.account, e.ts, (e.event_id,)))
    return found


def price_deviation(licence: Licence, rule: RuleSpec, history: History) -> list[Expected]:
    """Reference: the latest price (event time, then judging order) at or before the trade among the listed
    sources judged before it; at equal times the source listed first."""
    p = rule.params
    found = []
    for at in history:
        e = at.event
        if not isinstance(e, TradeEvent):
            continue
        best: tuple[datetime, int, int, Decimal] | None = None
        for prior in history[: at.index]:
            x = prior.event
            if (
                isinstance(x, PriceEvent)
                and x.source in p.sources
                and (x.base, x.quote) == (e.base, e.quote)
                and x.ts <= e.ts
            ):
                rank = (x.ts, -p.sources.index(x.source), prior.index)
                if best is None or rank > best[:3]:
                    best = (*rank, x.price)
        if best is None:
            continue
        reference = best[3]
        deviation = abs(e.price - reference) * 100 / reference
        if deviation > p.max_pct:
            found.append(_expect(licence, rule.id, e.event_id, e.account, e.ts, (e.event_id,), rounded(deviation, 4)))
    return found


def reserve_coverage(licence: Licence, rule: RuleSpec, history: History) -> list[Expected]:
    found = []
    for at in history:
        e = at.event
        if isinstance(e, ReserveEvent) and e.client_liabilities != 0:
            ratio = e.custody_balance / e.client_liabilities
            if ratio < rule.params.min_ratio:
                found.append(
                    _expect(licence, rule.id, e.event_id, e.participant, e.ts, (e.event_id,), rounded(ratio, 6))
                )
    return found


def participant_limits(licence: Licence, rule: RuleSpec, history: History) -> list[Expected]:
    p = rule.params
    found = []
    for at in history:
        e = at.event
        if not isinstance(e, ParticipantEvent):
            continue
        checks = (
            ("charter_capital_vnd", e.charter_capital_vnd, p.min_charter_capital_vnd, operator.lt),
            ("foreign_ownership_pct", e.foreign_ownership_pct, p.max_foreign_ownership_pct, operator.gt),
            (
                "institutional_ownership_pct",
                e.institutional_ownership_pct,
                p.min_institutional_ownership_pct,
                operator.lt,
            ),
        )
        for name, observed, limit, breaks in checks:
            if observed is not None and limit is not None and breaks(observed, limit):
                found.append(
                    _expect(licence, rule.id, f"{e.event_id}:{name}", e.participant, e.ts, (e.event_id,), observed)
                )
    return found


def licence_period(licence: Licence, rule: RuleSpec, history: History) -> list[Expected]:
    return [
        _expect(
            licence,
            rule.id,
            j.event.event_id,
            getattr(j.event, "account", None) or j.event.participant,
            j.event.ts,
            (j.event.event_id,),
        )
        for j in history
        if not _in_term(licence, j.event.ts)
    ]


ORACLES: dict[str, Oracle] = {
    "rolling_volume": rolling_volume,
    "structuring": structuring,
    "large_value_report": large_value_report,
    "periodic_report": periodic_report,
    "max_accounts": max_accounts,
    "kyc_required": kyc_required,
    "investor_class": investor_class,
    "registered_wallet": registered_wallet,
    "price_deviation": price_deviation,
    "reserve_coverage": reserve_coverage,
    "participant_limits": participant_limits,
    "licence_period": licence_period,
}


def valuation_unavailable(licence: Licence, history: History) -> list[Expected]:
    """Every event some value-based rule reads that has no price to be valued with."""
    valued: set[str] = set()
    for rule in licence.rules:
        if rule.kind in {"rolling_volume", "structuring", "large_value_report"}:
            valued |= set(rule.params.applies_to)
    return [
        _expect(
            licence,
            VALUATION_UNAVAILABLE,
            j.event.event_id,
            getattr(j.event, "account", None) or j.event.participant,
            j.event.ts,
            (j.event.event_id,),
        )
        for j in history
        if j.event.type in valued & {"trade", "deposit", "withdrawal", "transfer"}
        and value(j, licence, history) is None
    ]


def price_refused(licence: Licence, history: History) -> list[Expected]:
    """The participant's first price of each untrusted source and pair, in judging order (no max_step here)."""
    found: dict[str, Expected] = {}
    for j in history:
        e = j.event
        if (
            isinstance(e, PriceEvent)
            and e.participant == licence.participant
            and e.source not in licence.header.price_sources
        ):
            key = f"untrusted\x1f{e.source}\x1f{e.base}/{e.quote}"
            if key not in found:
                found[key] = _expect(licence, PRICE_REFUSED, key, e.participant, e.ts, (e.event_id,))
    return list(found.values())


def expected_findings(licence: Licence, history: History) -> set[Expected]:
    """Every finding the licence's rules must give over the history (late_event aside: see judged_order)."""
    found: set[Expected] = set(valuation_unavailable(licence, history)) | set(price_refused(licence, history))
    for rule in licence.rules:
        found.update(ORACLES[rule.kind](licence, rule, history))
    return found


__all__ = ["LATE_EVENT", "Expected", "expected_findings", "judged_order"]

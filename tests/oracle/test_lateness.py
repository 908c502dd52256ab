"""The lateness policy (docs/licence.md), case by case: within the allowed lateness an event is placed where
it belongs in event time; beyond it, it is judged against the current state, flagged late_event, and never
dropped; deadlines wait for the watermark."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from sandboxwatch.rules_engine.builtin_findings import LATE_EVENT
from sandboxwatch.rules_engine.engine import Engine
from sandboxwatch.rules_engine.event_parser import event_from_dict
from sandboxwatch.rules_engine.findings import Finding
from sandboxwatch.rules_engine.licence import LicenceError, parse_licence
from sandboxwatch.rules_engine.timestamps import parse_timestamp
from tests.helpers import HEADER, account, funds, trade, ts

R = "severity: breach, clause: c"


def _licence(*rules: str, lateness: str | None = "5m") -> Any:
    header = HEADER.replace("rules:\n", f"  allowed_lateness: {lateness}\nrules:\n") if lateness else HEADER
    return parse_licence(header + "".join(f"  - {rule}\n" for rule in rules))


def _feed(engine: Engine, rows: list[dict[str, Any]]) -> list[Finding]:
    found: list[Finding] = []
    for row in rows:
        found.extend(engine.process(event_from_dict(row)))
    return found


def test_the_default_allowed_lateness_is_five_minutes_and_zero_is_allowed() -> None:
    assert _licence(f"{{id: s, kind: self_trade, {R}}}", lateness=None).header.allowed_lateness.total_seconds() == 300
    assert _licence(f"{{id: s, kind: self_trade, {R}}}", lateness="0s").header.allowed_lateness.total_seconds() == 0
    assert _licence(f"{{id: s, kind: self_trade, {R}}}", lateness="2h").header.allowed_lateness.total_seconds() == 7200
    with pytest.raises(LicenceError, match="allowed_lateness"):
        _licence(f"{{id: s, kind: self_trade, {R}}}", lateness="-5m")


def test_a_crossing_is_placed_where_it_belongs_when_its_events_arrive_out_of_order() -> None:
    """In event time: 1000 then 4001 crosses 5000 at the second event. Delivered second-first (4 minutes
    apart, within the 5m lateness), the finding is still at the second event, citing both."""
    lic = _licence(f"{{id: vol, kind: rolling_volume, {R}, window: 1h, max: 5000}}")
    first = trade(when=ts(minute=0), quantity="1", price="1000", event_id="t-first")
    second = trade(when=ts(minute=4), quantity="1", price="4001", event_id="t-second")
    engine = Engine(lic)
    found = _feed(engine, [second, first]) + engine.flush()
    assert [(f.rule, f.evidence, f.observed) for f in found] == [("vol", ("t-first", "t-second"), Decimal(5001))]
    assert engine.stats.late == 0


def test_an_event_beyond_the_allowed_lateness_is_flagged_and_still_judged() -> None:
    lic = _licence(
        f"{{id: kyc, kind: kyc_required, {R}}}",
        f"{{id: vol, kind: rolling_volume, {R}, window: 1h, max: 5000}}",
    )
    engine = Engine(lic)
    rows = [
        account("c1", ts(hour=9), event_id="acct"),
        trade("c1", ts(hour=10, minute=0), quantity="1", price="3000", event_id="t-10:00"),
        trade("c1", ts(hour=10, minute=30), quantity="1", price="1", event_id="t-10:30"),
    ]
    assert _feed(engine, rows) == []  # the watermark is 10:25: 10:00 judged, 10:30 held
    # 10:20 is 10 minutes behind the newest event: beyond 5m. Unknown account: kyc; 3000 + 2001 > 5000: vol.
    late = trade("c2", ts(hour=10, minute=20), quantity="1", price="2001", event_id="t-late")
    found = _feed(engine, [late])
    assert [(f.kind, f.severity, f.evidence) for f in found] == [
        (LATE_EVENT, "info", ("t-late",)),
        ("kyc_required", "breach", ("t-late",)),
    ]
    assert "10m behind" in found[0].message and "allowed lateness of 5m" in found[0].message
    assert found[0].ts is not None and found[0].ts.isoformat() == late["ts"]
    # Its own account's window: c2 has only this event; c1's windows are not touched.
    assert engine.stats.late == 1
    assert engine.flush() == []


def test_a_late_event_is_judged_on_the_window_ending_at_its_own_time_and_counts_later() -> None:
    lic = _licence(f"{{id: vol, kind: rolling_volume, {R}, window: 1h, max: 5000}}")
    engine = Engine(lic)
    rows = [
        trade(when=ts(hour=10, minute=0), quantity="1", price="3000", event_id="a"),
        trade(when=ts(hour=10, minute=40), quantity="1", price="1", event_id="b"),
    ]
    assert _feed(engine, rows) == []
    late = trade(when=ts(hour=10, minute=10), quantity="1", price="2001", event_id="late")  # 30m behind
    found = _feed(engine, [late])
    assert [(f.kind, f.evidence, f.observed) for f in found] == [
        (LATE_EVENT, ("late",), None),
        ("rolling_volume", ("a", "late"), Decimal(5001)),
    ]
    # It stays in place. b (10:40) is released now and sees 5001 already in force: no new crossing.
    after = _feed(engine, [trade(when=ts(hour=11, minute=5), quantity="1", price="2999", event_id="c")])
    assert after == []
    # At 11:05, a has left the window (10:05, 11:05]: late + b = 2002 in force, and c crosses again.
    assert [(f.evidence, f.observed) for f in engine.flush()] == [(("late", "b", "c"), Decimal(5001))]


def test_a_late_account_event_does_not_replace_a_newer_state() -> None:
    lic = _licence(f"{{id: kyc, kind: kyc_required, {R}}}", f"{{id: users, kind: max_accounts, {R}, max: 1}}")
    engine = Engine(lic)
    _feed(engine, [account("c1", ts(hour=10), kyc_status="revoked", event_id="revoked")])
    _feed(engine, [funds(name="c9", when=ts(hour=11), event_id="other")])  # watermark 10:55
    stale = account("c1", ts(hour=9), kyc_status="verified", event_id="stale")  # older than the revocation
    found = _feed(engine, [stale])
    assert [f.kind for f in found] == [LATE_EVENT]  # no max_accounts: c1 is not verified now
    assert engine.facts.accounts["c1"].kyc_status == "revoked"
    found = _feed(engine, [trade("c1", ts(hour=11, minute=1), event_id="t")]) + engine.flush()
    assert [(f.kind, f.evidence) for f in found if f.subject == "c1"] == [("kyc_required", ("t",))]


LVTR = f"{{id: lvtr, kind: large_value_report, {R}, threshold: 1000, deadline: 30m}}"


def test_a_deadline_waits_for_the_watermark_so_a_report_arriving_within_lateness_counts() -> None:
    """Event time: trade 10:00 (due 10:30), report 10:29, another trade 10:31. The report arrives last,
    two minutes after the 10:31 trade: within 5m, so it is placed before the deadline is judged."""
    engine = Engine(_licence(LVTR))
    big = funds(when=ts(hour=10), amount="1000", event_id="big")
    after = funds(when=ts(hour=10, minute=31), amount="1", event_id="after")
    report = {**funds(when=ts(hour=10, minute=29)), "type": "report", "report_type": "large_value", "refs": ["big"]}
    for name in ("account", "asset", "amount", "rail", "site"):
        report.pop(name)
    found = _feed(engine, [big, after, report, funds(when=ts(hour=12), amount="1", event_id="noon")])
    assert found + engine.flush() == []


def test_a_deadline_passed_without_a_report_is_found_once_the_watermark_passes_it() -> None:
    engine = Engine(_licence(LVTR))
    big = funds(when=ts(hour=10), amount="1000", event_id="big")
    assert _feed(engine, [big, funds(when=ts(hour=10, minute=34), amount="1", event_id="x")]) == []
    # 10:38 moves the watermark to 10:33, short of 10:34: the deadline is not judged yet.
    assert _feed(engine, [funds(when=ts(hour=10, minute=38), amount="1", event_id="y")]) == []
    # 10:40 moves it to 10:35: 10:34 is released, and its time passes the 10:30 deadline.
    found = _feed(engine, [funds(when=ts(hour=10, minute=40), amount="1", event_id="z")])
    assert [(f.rule, f.evidence) for f in found] == [("lvtr", ("big",))]


def test_advance_to_judges_the_buffer_before_the_deadlines_and_counts_each_finding_once() -> None:
    engine = Engine(_licence(LVTR, f"{{id: kyc, kind: kyc_required, {R}}}"))
    big = funds(when=ts(hour=10), amount="1000", event_id="big")  # no account record: a kyc finding too
    assert _feed(engine, [big]) == []  # held: nothing newer has arrived
    early = engine.advance_to(parse_timestamp(ts(hour=9)))  # before the clock: the buffer only
    assert [(f.rule, f.evidence) for f in early] == [("kyc", ("big",))]
    due = engine.advance_to(parse_timestamp(ts(hour=10, minute=31)))
    assert [(f.rule, f.evidence) for f in due] == [("lvtr", ("big",))]
    assert sum(engine.stats.findings.values()) == 2


def test_structuring_judges_a_late_event_on_the_window_ending_at_its_own_time() -> None:
    engine = Engine(_licence(f"{{id: st, kind: structuring, {R}, threshold: 3000, window: 1h, min_count: 2}}"))
    rows = [
        funds(when=ts(hour=10), amount="2000", event_id="a"),
        funds(when=ts(hour=10, minute=40), amount="1", event_id="b"),
        funds(when=ts(hour=10, minute=50), amount="1", event_id="c"),  # watermark 10:45: b judged
    ]
    assert _feed(engine, rows) == []
    late = funds(when=ts(hour=10, minute=10), amount="1500", event_id="late")  # 40m behind
    found = _feed(engine, [late])
    assert [(f.kind, f.evidence, f.observed) for f in found] == [
        (LATE_EVENT, ("late",), None),
        ("structuring", ("a", "late"), Decimal(3500)),
    ]
    # c at 10:50 sees (9:50, 10:50]: a, late, b and itself, already past the threshold before it: no repeat.
    assert engine.flush() == []


def test_the_watermark_never_moves_back_after_a_flush() -> None:
    """Found by the any-order property: an event after the term flushes the buffer (watermark = newest,
    10:00); a newer in-term event at 10:04 must not pull it back to 9:59, or 9:59:30, older than what was
    already judged, would slip in unflagged."""
    engine = Engine(_licence(f"{{id: s, kind: self_trade, {R}}}"))
    _feed(engine, [trade(when=ts(hour=10), event_id="judged")])
    _feed(engine, [trade(when="2026-09-01T00:00:00+07:00", event_id="after-term")])
    _feed(engine, [trade(when=ts(hour=10, minute=4), event_id="newer")])
    found = _feed(engine, [trade(when=ts(hour=9, minute=59, second=30), event_id="older")])
    assert [(f.kind, f.evidence) for f in found] == [(LATE_EVENT, ("older",))]

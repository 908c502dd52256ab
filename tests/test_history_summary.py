"""A compliance summary never claims compliance for a period nothing was judged in, and counts dead letters
in the period of the event they carry, not of the day they were written."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

pytest.importorskip("chdb")

from sandboxwatch.rules_engine.event_reader import parse_json_line
from sandboxwatch.rules_engine.events import Event
from sandboxwatch.store.clickhouse_store import Store
from sandboxwatch.store.history import History, Scope
from sandboxwatch.store.records import DeadLetter, EventRecord

P = "alphatrue-basal-pay"
OCTOBER = (datetime(2025, 10, 1, tzinfo=UTC), datetime(2025, 10, 31, 23, 59, 59, tzinfo=UTC))
MARCH = (datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 3, 31, tzinfo=UTC))


def _account_event(event_id: str, ts: str) -> EventRecord:
    line = json.dumps(
        {"event_id": event_id, "type": "account", "participant": P, "ts": ts, "account": "c1", "kyc_status": "verified",
         "investor_class": "domestic", "wallets": []}
    )  # fmt: skip
    event = parse_json_line(line, "t", 1)
    assert isinstance(event, Event), event
    return EventRecord(event, line, "t:1")


def test_no_events_in_the_period_is_no_data_not_compliance(store: Store) -> None:
    history = History(store)
    unknown = history.summary(Scope(), "nobody-at-all", *OCTOBER)
    assert unknown is not None
    assert unknown["compliant"] is None
    assert unknown["no_data"] == "unknown participant nobody-at-all: no events, findings or licence on record"
    store.write_events([_account_event("a1", "2025-10-02T09:00:00+07:00")])
    judged = history.summary(Scope(), P, *OCTOBER)
    assert judged is not None and judged["compliant"] is True and judged["no_data"] is None
    assert judged["events_by_type"] == {"account": 1}
    empty = history.summary(Scope(), P, *MARCH)
    assert empty is not None
    assert empty["compliant"] is None
    assert empty["no_data"] == f"no events of {P} in the period: nothing was judged"


def test_dead_letters_are_counted_in_the_period_of_their_event_time(store: Store) -> None:
    carrying_ts = [
        # compact and spaced JSON alike; an offset is honoured (23:30 at -05:00 is already 1 April in UTC)
        DeadLetter("t/0/1", P, "amount", "bad", '{"event_id":"d1","ts":"2025-03-10T10:00:00+07:00","amount":"x"}'),
        DeadLetter("t/0/2", P, "amount", "bad", '{"event_id": "d2", "ts": "2025-03-20T00:00:00Z", "amount": "x"}'),
        DeadLetter("t/0/3", P, "amount", "bad", '{"event_id":"d3","ts":"2025-03-31T23:30:00-05:00"}'),
    ]
    no_ts = [  # no readable event time: counted when it was recorded (now)
        DeadLetter("t/0/4", P, "", "not valid JSON", "\x00garbage"),
        DeadLetter("t/0/5", P, "ts", "not a time", '{"event_id":"d5","ts":"yesterday"}'),
    ]
    store.write_dead_letters(carrying_ts + no_ts)
    history = History(store)
    march = history.summary(Scope(), P, *MARCH)
    assert march is not None and march["dead_letters"] == 2
    now = datetime.now(UTC)
    recent = history.summary(Scope(), P, now.replace(year=now.year - 1), now.replace(year=now.year + 1))
    assert recent is not None and recent["dead_letters"] == 2  # the two without a time, not the March ones
    april = history.summary(Scope(), P, datetime(2025, 4, 1, tzinfo=UTC), datetime(2025, 4, 2, tzinfo=UTC))
    assert april is not None and april["dead_letters"] == 1

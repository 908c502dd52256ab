"""The trailing window rolling_volume and structuring share: its answer for in-order and late events, and
snapshots taken while each rule module had its own Window class still loading."""

from __future__ import annotations

import pickle
from collections import deque
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sandboxwatch.rules_engine.event_window import Window

T0 = datetime(2025, 11, 10, 3, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)

# pickle.dumps({"rv": {"c1": rolling_volume.Window(...)}, "st": {("c1", "deposit"): structuring.Window(...)}}),
# made by the code before the shared module: the names a stream worker's stored snapshot holds.
OLD_SNAPSHOT = (
    b"\x80\x05\x95f\x01\x00\x00\x00\x00\x00\x00}\x94(\x8c\x02rv\x94}\x94\x8c\x02c1\x94\x8c.sandboxwatch.rules_engine"
    b".rules.rolling_volume\x94\x8c\x06Window\x94\x93\x94\x8c\x0bcollections\x94\x8c\x05deque\x94\x93\x94)R\x94\x8c"
    b"\x08datetime\x94\x8c\x08datetime\x94\x93\x94C\n\x07\xe9\x0b\n\x03\x00\x00\x00\x00\x00\x94h\x0b\x8c\x08timezone"
    b"\x94\x93\x94h\x0b\x8c\ttimedelta\x94\x93\x94K\x00K\x00K\x00\x87\x94R\x94\x85\x94R\x94\x86\x94R\x94\x8c\x07decim"
    b"al\x94\x8c\x07Decimal\x94\x93\x94\x8c\x035.5\x94\x85\x94R\x94\x8c\x02e1\x94\x87\x94ah\x1b\x8c\x035.5\x94\x85"
    b"\x94R\x94\x86\x94R\x94s\x8c\x02st\x94}\x94h\x03\x8c\x07deposit\x94\x86\x94\x8c+sandboxwatch.rules_engine.rule"
    b"s.structuring\x94h\x05\x93\x94h\t)R\x94h\x18h\x1b\x8c\x017\x94\x85\x94R\x94\x8c\x02e2\x94\x87\x94ah\x1b\x8c"
    b"\x017\x94\x85\x94R\x94\x86\x94R\x94su."
)


def test_snapshots_naming_either_rule_modules_window_load_as_the_shared_window() -> None:
    state = pickle.loads(OLD_SNAPSHOT)
    volume, split = state["rv"]["c1"], state["st"][("c1", "deposit")]
    assert type(volume) is Window and type(split) is Window
    assert (list(volume.entries), volume.total) == ([(T0, Decimal("5.5"), "e1")], Decimal("5.5"))
    assert (list(split.entries), split.total) == ([(T0, Decimal("7"), "e2")], Decimal("7"))
    again = pickle.loads(pickle.dumps(volume, protocol=pickle.HIGHEST_PROTOCOL))
    assert type(again) is Window and (again.entries, again.total) == (volume.entries, volume.total)


def test_in_order_events_leave_the_window_and_the_sum_before_each_is_answered() -> None:
    window = Window()
    assert window.add(T0, Decimal(3), "a", HOUR) == (deque([(T0, Decimal(3), "a")]), Decimal(0))
    seen, before = window.add(T0 + HOUR / 2, Decimal(4), "b", HOUR)
    assert ([e[2] for e in seen], before) == (["a", "b"], Decimal(3))
    seen, before = window.add(T0 + HOUR, Decimal(5), "c", HOUR)  # "a" is exactly one span old: it left
    assert ([e[2] for e in seen], before, window.total) == (["b", "c"], Decimal(4), Decimal(9))


def test_a_late_event_is_judged_on_the_window_ending_at_it_and_kept_in_place() -> None:
    window = Window()
    for minutes, value, event_id in ((0, 1, "a"), (40, 2, "b"), (90, 4, "c")):
        window.add(T0 + timedelta(minutes=minutes), Decimal(value), event_id, HOUR)
    assert [e[2] for e in window.entries] == ["b", "c"]  # "a" left when "c" came
    seen, before = window.add(T0 + timedelta(minutes=50), Decimal(8), "late", HOUR)
    assert ([e[2] for e in seen], before) == (["b", "late"], Decimal(2))
    assert [e[2] for e in window.entries] == ["b", "late", "c"] and window.total == Decimal(14)

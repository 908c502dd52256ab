"""The price book's sliding band (facts._Band) against a brute-force reference: range_from must give exactly
the lowest and highest trusted price of the window whatever the order prices and questions come in, and
across a snapshot (pickle) of the book at any point."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sandboxwatch.rules_engine.events import PriceEvent
from sandboxwatch.rules_engine.facts import PriceBook

T0 = datetime(2026, 1, 1, tzinfo=UTC)
SPAN = timedelta(minutes=30)
SOURCES = ("a", "b", "c")
# Equal values in different forms (1, 1.0, 1.00) and close ones, so ties and order of equals are exercised.
PRICES = [Decimal(text) for text in ("1", "1.0", "1.00", "0.99", "1.01", "2", "2.000", "0.5", "100", "7E+2")]


def price(ts: datetime, value: Decimal, source: str, pair: tuple[str, str] = ("BTC", "VND")) -> PriceEvent:
    return PriceEvent("p", "price", "venue", ts, None, {}, pair[0], pair[1], value, source)


def brute_force(
    points: list[tuple[datetime, Decimal, str]], start: datetime, end: datetime, sources: tuple[str, ...]
) -> tuple[Decimal | None, Decimal | None]:
    values = [value for ts, value, source in points if source in sources and start < ts <= end]
    return (min(values), max(values)) if values else (None, None)


# One step: add a price at a minute offset, or ask for the window ending at a minute offset. Offsets go
# mostly forward (a drift added to each step) with some going back: late prices and late questions.
Step = tuple[str, int, Decimal, str, tuple[str, ...]]
step = st.tuples(
    st.sampled_from(["add", "add", "ask"]),
    st.integers(min_value=-40, max_value=15),
    st.sampled_from(PRICES),
    st.sampled_from(SOURCES),
    st.sampled_from([("a",), ("a", "b"), ("b", "a"), ("c",), ("a", "b", "c")]),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step, min_size=1, max_size=120), st.integers(min_value=0, max_value=119))
def test_range_from_equals_brute_force_in_and_out_of_order(steps: list[Step], snapshot_at: int) -> None:
    book = PriceBook()
    points: list[tuple[datetime, Decimal, str]] = []
    clock = 0
    for index, (action, offset, value, source, sources) in enumerate(steps):
        clock += 3
        if action == "add":
            ts = T0 + timedelta(minutes=clock + offset)
            book.add(price(ts, value, source))
            points.append((ts, value, source))
        else:
            # Questions go back less often and less far than prices: most are answered by the band.
            ts = T0 + timedelta(minutes=clock + offset // 8 + 10)
            expected = brute_force(points, ts - SPAN, ts, sources)
            got = book.range_from("BTC", "VND", ts - SPAN, ts, sources)
            assert got == expected
            assert got == book.scan_range("BTC", "VND", ts - SPAN, ts, sources)
            # Another pair's book is untouched by this one's prices.
            assert book.range_from("ETH", "VND", ts - SPAN, ts, sources) == (None, None)
        if index == snapshot_at:
            book = pickle.loads(pickle.dumps(book, protocol=pickle.HIGHEST_PROTOCOL))


def test_a_day_of_prices_in_order_answers_each_window_exactly() -> None:
    """The engine's use: a question before each price, over the day before it, windows moving forward."""
    book = PriceBook()
    points: list[tuple[datetime, Decimal, str]] = []
    day = timedelta(hours=24)
    for minute in range(0, 3 * 24 * 60, 7):
        ts = T0 + timedelta(minutes=minute)
        value = Decimal(1000 + (minute * 7919) % 613) / Decimal(10)
        source = SOURCES[minute % 3]
        expected = brute_force(points, ts - day, ts, ("a", "b"))
        assert book.range_from("BTC", "VND", ts - day, ts, ("a", "b")) == expected
        book.add(price(ts, value, source))
        points.append((ts, value, source))
    assert expected[0] is not None  # the windows were not empty


def test_a_book_pickled_before_bands_existed_restores_and_answers() -> None:
    """A snapshot written by the code before the bands held only ``_series`` (the same form as now)."""
    book = PriceBook()
    for minute, value in ((1, "5"), (2, "3"), (3, "9"), (4, "4")):
        book.add(price(T0 + timedelta(minutes=minute), Decimal(value), "a"))
    old_form = book.__reduce_ex__(pickle.HIGHEST_PROTOCOL)
    assert old_form[2] == (None, {"_series": book._series})
    restored = pickle.loads(pickle.dumps(book))
    end = T0 + timedelta(minutes=4)
    assert restored.range_from("BTC", "VND", end - SPAN, end, ("a",)) == (Decimal(3), Decimal(9))
    assert restored.range_from("BTC", "VND", T0 + timedelta(minutes=2), end, ("a",)) == (Decimal(4), Decimal(9))

"""What each venue's history endpoints allow, so the connector can always page its way to the present.

ccxt hides the request parameters but not the venues' limits: Binance answers deposit and withdrawal history
only for a ``startTime``..``endTime`` span of at most 90 days and at most 1000 records, and pages its own
trades by trade id (``fromId``). A connector that ignores those limits reads the first window forever and
reports "0 events" -- the silent blindness this table exists to prevent."""

from __future__ import annotations

from dataclasses import dataclass

DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class VenueProfile:
    # Longest span one deposit/withdrawal history request may cover (None: the venue takes any span).
    history_window_ms: int | None
    # Request parameter that ends a history window; ccxt's unified one is ``until``, but some of its venue
    # classes overwrite it with their own computed end, so the venue's raw name is given where needed.
    history_end_param: str
    # Most records one history request returns; a window that comes back this full is split.
    history_page_max: int
    # Request parameter paging the account's trades by the venue's trade id, when the venue has one.
    trade_from_id_param: str | None
    # Largest trade page the venue serves; used when a page full of already-published trades stalls.
    trade_page_max: int
    # The venue answers a trade time range newest first with a fixed page: read trades window by window
    # (split when full) like history, never by ``since`` alone.
    trades_by_window: bool = False
    # Longest span one trade request may cover, for venues read by window (None: any span).
    trade_window_ms: int | None = None
    # Added to a window's end in the request, for venues whose end parameter is exclusive (OKX ``after`` is
    # "earlier than"): a record at the window's last millisecond must be in it, never between two windows.
    end_overlap_ms: int = 0


GENERIC = VenueProfile(None, "until", 1000, None, 1000)
PROFILES: dict[str, VenueProfile] = {
    "binance": VenueProfile(90 * DAY_MS, "endTime", 1000, "fromId", 1000),
    # OKX v5: fills-history (the last 3 months), deposit-history and withdrawal-history answer newest first,
    # at most 100 records; ccxt sends no limit with ``since`` for fills, so 100 is the page.
    "okx": VenueProfile(None, "until", 100, None, 100, trades_by_window=True, end_overlap_ms=1),
}


def profile_for(exchange_id: str) -> VenueProfile:
    return PROFILES.get(exchange_id, GENERIC)

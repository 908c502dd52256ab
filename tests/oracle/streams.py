"""Hypothesis strategies for small adversarial event streams: few accounts, values exactly at the limits,
instants on window, deadline, lateness and licence-term edges, equal timestamps written in different
offsets, re-delivered copies, and clusters far enough apart that windows drain and refill."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

from sandboxwatch.rules_engine.licence import Licence, parse_licence

PARTICIPANT = "p1"
VALID_FROM = datetime(2025, 10, 1, tzinfo=timezone(timedelta(hours=7)))
VALID_UNTIL = datetime(2025, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=7)))
ALLOWED_LATENESS = timedelta(minutes=5)
R = "severity: breach, clause: c"

# Limits chosen so that the value sets below land exactly on, just under and just over them.
LICENCE_TEXT = f"""licence:
  id: ORACLE-1
  participant: {PARTICIPANT}
  title: oracle
  legal_basis: test
  valid_from: {VALID_FROM.isoformat()}
  valid_until: {VALID_UNTIL.isoformat()}
  reporting_currency: VND
  reference_prices: {{sources: [binance, okx]}}
  allowed_lateness: 5m
rules:
  - {{id: period, kind: licence_period, {R}}}
  - {{id: vol, kind: rolling_volume, {R}, window: 1h, max: 5000, applies_to: [trade, deposit]}}
  - {{id: st, kind: structuring, {R}, threshold: 3000, window: 1h, min_count: 2}}
  - {{id: lvtr, kind: large_value_report, {R}, threshold: 3000, deadline: 30m}}
  - {{id: rep, kind: periodic_report, {R}, every: month, due_day: 3}}
  - {{id: users, kind: max_accounts, {R}, max: 2}}
  - {{id: kyc, kind: kyc_required, {R}, require_bank_account: true}}
  - {{id: cls, kind: investor_class, {R}, classes: [domestic]}}
  - {{id: wallets, kind: registered_wallet, {R}}}
  - {{id: fp, kind: price_deviation, {R}, max_pct: 3, sources: [binance, okx]}}
  - {{id: res, kind: reserve_coverage, {R}, min_ratio: 1.0}}
  - {{id: part, kind: participant_limits, {R}, min_charter_capital_vnd: 100, max_foreign_ownership_pct: 49}}
"""


def licence() -> Licence:
    return parse_licence(LICENCE_TEXT, "oracle-licence.yaml")


# Cluster anchors: the term's edges, and the instants the monthly reports for October and November fall due
# (end of the 3rd of the following month, licence time zone). Clusters are days apart: windows drain.
ANCHORS = (
    VALID_FROM,
    VALID_FROM + timedelta(days=1),
    datetime(2025, 11, 4, tzinfo=VALID_FROM.tzinfo),
    datetime(2025, 12, 4, tzinfo=VALID_FROM.tzinfo),
    VALID_UNTIL,
)
# Offsets from an anchor, on the edges of the 1h windows, the 30m deadline and the 5m lateness.
SHIFTS = (
    -3601,
    -3600,
    -3599,
    -1801,
    -1800,
    -301,
    -300,
    -60,
    -1,
    0,
    0,
    0,
    1,
    60,
    299,
    300,
    1799,
    1800,
    1801,
    3600,
    3601,
)
ZONES = (timezone(timedelta(hours=7)), UTC, timezone(timedelta(hours=-5)))
ACCOUNTS = ("a", "b", "c")


@st.composite
def instants(draw: Any) -> datetime:
    anchor = draw(st.sampled_from(ANCHORS))
    moment: datetime = anchor + timedelta(seconds=draw(st.sampled_from(SHIFTS)))
    return moment.astimezone(draw(st.sampled_from(ZONES)))


@st.composite
def event_rows(draw: Any, event_id: str, earlier: list[str], when: datetime | None = None) -> dict[str, Any]:
    """One canonical event (docs/events.md) of any type the stateful rules read."""
    moment = when or draw(instants())
    row: dict[str, Any] = {"event_id": event_id, "participant": PARTICIPANT, "ts": moment.isoformat()}
    kind = draw(
        st.sampled_from(
            ["trade", "trade", "deposit", "deposit", "withdrawal", "account", "account", "price", "report",
             "reserve", "participant"]
        )
    )  # fmt: skip
    row["type"] = kind
    account = draw(st.sampled_from(ACCOUNTS))
    if kind == "account":
        row.update(
            account=account,
            kyc_status=draw(st.sampled_from(["verified", "verified", "pending", "revoked"])),
            investor_class=draw(st.sampled_from(["domestic", "domestic", "foreign"])),
            bank_account_verified=draw(st.sampled_from([True, True, False, None])),
            wallets=draw(st.sampled_from([[], ["0xAA"]])),
        )
    elif kind == "trade":
        row.update(
            account=account,
            side="buy",
            base="USDT",
            quote="VND",
            quantity=str(draw(st.sampled_from([1, 1, 2, 5]))),
            price=str(draw(st.sampled_from([969, 970, 1000, 1030, 1031, 1500, 2500, 2999, 3000, 5001]))),
        )
    elif kind == "deposit":
        amount = draw(st.sampled_from([1000, 1500, 2000, 2999, 3000, 5000, 5001]))
        row.update(account=account, asset="VND", amount=str(amount), rail="bank")
    elif kind == "withdrawal":
        row.update(
            account=account,
            asset="USDT",
            amount=str(draw(st.sampled_from([1, 2, 3]))),
            rail="onchain",
            chain="ethereum",
            address=draw(st.sampled_from(["0xaa", "0xAA", "0xbb"])),
            tx_hash="0x01",
        )
    elif kind == "price":
        row.update(
            base="USDT",
            quote="VND",
            price=str(draw(st.sampled_from([970, 1000, 1001, 1500]))),
            source=draw(st.sampled_from(["binance", "okx", "other"])),
        )
    elif kind == "report":
        if earlier and draw(st.booleans()):
            row.update(report_type="large_value", refs=draw(st.lists(st.sampled_from(earlier), min_size=1, max_size=2)))
        else:
            row.update(report_type="periodic", period=draw(st.sampled_from(["2025-10", "2025-11", "2025-12"])))
    elif kind == "reserve":
        row.update(
            asset="USDT",
            custody_balance=str(draw(st.sampled_from([0, 99, 100, 101]))),
            client_liabilities=str(draw(st.sampled_from([0, 100]))),
        )
    else:
        facts = draw(
            st.sampled_from(
                [{"charter_capital_vnd": v} for v in ("99", "100")]
                + [{"foreign_ownership_pct": v} for v in ("49", "49.01")]
                + [{"charter_capital_vnd": "99", "foreign_ownership_pct": "49.01"}]
            )
        )
        row.update(facts)
    return row


@st.composite
def streams(draw: Any, max_events: int = 24) -> list[dict[str, Any]]:
    """Rows in file order; some instants are shared (the same moment, maybe in another offset), and some
    rows are delivered twice."""
    count = draw(st.integers(min_value=1, max_value=max_events))
    rows: list[dict[str, Any]] = []
    ids: list[str] = []
    for i in range(count):
        when = None
        if rows and draw(st.integers(0, 4)) == 0:
            # The same instant as an earlier row, written in any offset.
            shared = datetime.fromisoformat(draw(st.sampled_from(rows))["ts"])
            when = shared.astimezone(draw(st.sampled_from(ZONES)))
        row = draw(event_rows(f"e{i}", ids, when))
        rows.append(row)
        ids.append(row["event_id"])
    for _ in range(draw(st.integers(0, 3))):
        rows.insert(draw(st.integers(0, len(rows))), dict(draw(st.sampled_from(rows))))
    return rows

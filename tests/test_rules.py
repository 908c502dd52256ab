"""One block per rule kind: the breach, the boundary (equal to a limit is no breach unless the contract
says >=) and the compliant case."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sandboxwatch.rules_engine.licence import parse_licence
from tests.helpers import (
    HEADER,
    account,
    ev,
    funds,
    licence_with,
    onchain,
    price,
    rules_of,
    run,
    trade,
    ts,
)

R = "severity: breach, clause: c"


def test_licence_period_flags_events_outside_term_only() -> None:
    lic = licence_with(f"{{id: period, kind: licence_period, {R}}}")
    rows = [
        price("2025-08-31T23:59:59+07:00"),
        price("2025-09-01T00:00:00+07:00"),
        price("2026-08-31T23:59:59+07:00"),
        price("2026-09-01T00:00:00+07:00"),
    ]
    found = run(lic, rows)
    assert [f.evidence[0] for f in found] == [rows[0]["event_id"], rows[3]["event_id"]]


def test_allowed_sites_needs_a_listed_site_on_customer_events() -> None:
    lic = licence_with(f"{{id: sites, kind: allowed_sites, {R}, sites: [A, B]}}")
    found = run(
        lic,
        [
            account(site="A"),
            trade(site="B"),
            trade(site="C"),
            funds(site=None),
            price(),  # not a customer event: no site needed
        ],
    )
    assert [f.message.split(" ")[0:2] for f in found] == [["trade", "event"], ["deposit", "event"]]
    assert "no site" in found[1].message


def test_allowed_assets_ignores_reporting_currency_money() -> None:
    lic = licence_with(f"{{id: assets, kind: allowed_assets, {R}, assets: [USDT]}}")
    rows = [trade(base="USDT"), trade(base="BTC"), funds(asset="VND"), onchain(asset="ETH")]
    found = run(lic, rows)
    assert [f.evidence for f in found] == [(rows[1]["event_id"],), (rows[3]["event_id"],)]
    assert "BTC" in found[0].message and "ETH" in found[1].message


def test_settlement_currency_checks_trade_quote_and_bank_rail() -> None:
    lic = licence_with(f"{{id: fiat, kind: settlement_currency, {R}, currencies: [VND]}}")
    found = run(lic, [trade(quote="VND"), trade(quote="USD"), funds(asset="USD"), onchain(asset="USDT")])
    assert [f.message.split(" ")[0] for f in found] == ["trade", "deposit"]


def test_kyc_required_uses_state_at_that_moment() -> None:
    lic = licence_with(f"{{id: kyc, kind: kyc_required, {R}, require_bank_account: true}}")
    rows = [
        trade("c1", ts(hour=1)),  # no record yet
        account("c1", ts(hour=2), kyc_status="pending"),
        trade("c1", ts(hour=3)),
        account("c1", ts(hour=4), bank_account_verified=False),
        trade("c1", ts(hour=5)),
        account("c1", ts(hour=6)),
        trade("c1", ts(hour=7)),
        account("c1", ts(hour=8), kyc_status="revoked"),
        funds("withdrawal", "c1", ts(hour=9)),
    ]
    found = run(lic, rows)
    assert ["no account record" in found[0].message, "pending" in found[1].message] == [True, True]
    assert "bank account" in found[2].message
    assert "revoked" in found[3].message
    assert [f.evidence for f in found] == [(rows[i]["event_id"],) for i in (0, 2, 4, 8)]  # not the trade at 7h


def test_kyc_bank_account_optional_when_not_required() -> None:
    lic = licence_with(f"{{id: kyc, kind: kyc_required, {R}}}")
    assert run(lic, [account(bank_account_verified=None), trade()]) == []


def test_investor_class_optionally_limited_to_assets() -> None:
    lic = licence_with(f"{{id: cls, kind: investor_class, {R}, classes: [domestic], assets: [BTC]}}")
    found = run(
        lic,
        [
            account("f1", investor_class="foreign"),
            trade("f1", base="USDT"),
            trade("f1", base="BTC"),
            account("d1", investor_class="domestic"),
            trade("d1", base="BTC"),
        ],
    )
    assert len(found) == 1 and "foreign" in found[0].message


def test_registered_wallet_is_case_insensitive_and_onchain_only() -> None:
    lic = licence_with(f"{{id: w, kind: registered_wallet, {R}}}")
    found = run(
        lic,
        [
            account(wallets=["0xAbCd"]),
            onchain(address="0xabcd"),
            onchain(address="0xbeef"),
            funds(),
        ],
    )
    assert len(found) == 1 and "0xbeef" in found[0].message


def test_max_transaction_value_equal_is_allowed() -> None:
    lic = licence_with(f"{{id: cap, kind: max_transaction_value, {R}, max: 2600000}}")
    found = run(lic, [trade(quantity="100", price="26000"), trade(quantity="100.01", price="26000")])
    assert len(found) == 1
    assert found[0].observed == Decimal("2600260.00") and found[0].limit == Decimal(2600000)


def test_max_transaction_value_values_crypto_at_latest_price_at_or_before() -> None:
    lic = licence_with(f"{{id: cap, kind: max_transaction_value, {R}, max: 2600000, applies_to: [withdrawal]}}")
    found = run(
        lic,
        [
            price(ts(hour=1), "26000"),
            onchain(when=ts(hour=2), amount="100"),  # 2.6m: not above
            price(ts(hour=3), "26001"),
            onchain(when=ts(hour=3), amount="100"),  # same instant: the new price applies
            trade(when=ts(hour=4), quantity="1000", price="26000"),  # not in applies_to
        ],
    )
    assert len(found) == 1 and found[0].observed == Decimal("2600100")


def test_valuation_unavailable_is_a_warning_and_skips_value_rules() -> None:
    lic = licence_with(f"{{id: cap, kind: max_transaction_value, {R}, max: 1}}")
    found = run(lic, [onchain(when=ts(hour=1), amount="5"), price(ts(hour=2)), onchain(when=ts(hour=3))])
    assert rules_of(found) == ["valuation_unavailable", "cap"]
    assert found[0].severity == "warning"


def test_rolling_volume_reports_once_per_crossing_and_expires() -> None:
    lic = licence_with(f"{{id: vol, kind: rolling_volume, {R}, window: 24h, max: 3000}}")
    rows = [
        trade(when=ts(day=1, hour=1), quantity="1", price="1000"),
        trade(when=ts(day=1, hour=2), quantity="1", price="2000"),  # 3000: equal, fine
        trade(when=ts(day=1, hour=3), quantity="1", price="1"),  # 3001: crossing
        trade(when=ts(day=1, hour=4), quantity="1", price="1"),  # still above: no repeat
        trade(when=ts(day=2, hour=3), quantity="1", price="10"),  # first three expired: 11
        trade(when=ts(day=2, hour=4), quantity="1", price="2991"),  # 10 + 2991: new crossing
    ]
    found = run(lic, rows)
    ids = [row["event_id"] for row in rows]
    assert [f.observed for f in found] == [Decimal(3001), Decimal(3001)]
    # Evidence: the window's events at each crossing (the day-1 4h trade left the window at day-2 4h exactly).
    assert [f.evidence for f in found] == [tuple(ids[0:3]), tuple(ids[4:6])]


def test_rolling_volume_reports_a_second_crossing_after_the_window_drained_without_an_event() -> None:
    """Issue 14: the cap is crossed, the account goes quiet while the window drains below the cap, and the
    next event crosses it again: that is a second crossing, with its own finding."""
    lic = licence_with(f"{{id: vol, kind: rolling_volume, {R}, window: 24h, max: 3000}}")
    first = trade(when=ts(day=1, hour=1), quantity="1", price="3001")
    second = trade(when=ts(day=3, hour=1), quantity="1", price="3001")  # day 1 left the window on day 2
    found = run(lic, [first, second])
    assert [f.evidence for f in found] == [(first["event_id"],), (second["event_id"],)]
    assert [f.observed for f in found] == [Decimal(3001), Decimal(3001)]


def test_structuring_reports_a_second_pattern_after_the_window_drained_without_an_event() -> None:
    lic = licence_with(f"{{id: st, kind: structuring, {R}, threshold: 1000, window: 1h, min_count: 2}}")
    rows = [
        funds(when=ts(hour=1), amount="600"),
        funds(when=ts(hour=1, minute=10), amount="600"),  # 2 x 600 >= 1000: flagged
        funds(when=ts(hour=3), amount="600"),  # both left the window; no event in between
        funds(when=ts(hour=3, minute=10), amount="600"),  # a new pattern
    ]
    found = run(lic, rows)
    assert [f.evidence for f in found] == [
        (rows[0]["event_id"], rows[1]["event_id"]),
        (rows[2]["event_id"], rows[3]["event_id"]),
    ]


def test_rolling_volume_window_excludes_event_exactly_window_old() -> None:
    lic = licence_with(f"{{id: vol, kind: rolling_volume, {R}, window: 1h, max: 100}}")
    assert (
        run(
            lic,
            [
                trade(when=ts(hour=1), quantity="1", price="100"),
                trade(when=ts(hour=2), quantity="1", price="100"),
            ],
        )
        == []
    )


def test_rolling_volume_is_per_account() -> None:
    lic = licence_with(f"{{id: vol, kind: rolling_volume, {R}, window: 24h, max: 100}}")
    assert run(lic, [trade("a", quantity="1", price="100"), trade("b", quantity="1", price="100")]) == []


LVTR = f"{{id: lvtr, kind: large_value_report, {R}, threshold: 1000, deadline: 24h}}"


def test_large_value_report_judged_only_after_deadline_passes() -> None:
    lic = licence_with(LVTR)
    big = funds(when=ts(day=1, hour=10), amount="1000")  # >= threshold
    small = funds(when=ts(day=1, hour=10), amount="999")
    rows = [big, small, price(ts(day=2, hour=10))]  # exactly at the deadline: not yet passed
    assert run(lic, rows) == []
    found = run(lic, [*rows, price(ts(day=2, hour=10, second=1))])
    assert len(found) == 1 and found[0].evidence == (big["event_id"],)
    assert found[0].ts is not None and found[0].ts.isoformat() == big["ts"]


def test_large_value_report_in_time_satisfies_late_does_not() -> None:
    lic = licence_with(LVTR)
    on_time, late = funds(when=ts(day=1), amount="5000"), funds(when=ts(day=1), amount="5000")
    found = run(
        lic,
        [
            on_time,
            late,
            ev("report", ts(day=2), report_type="large_value", refs=[on_time["event_id"]]),
            ev("report", ts(day=2, second=1), report_type="large_value", refs=[late["event_id"]]),
            price(ts(day=3)),
        ],
    )
    assert [f.evidence[0] for f in found] == [late["event_id"]]


def test_a_large_value_report_dated_before_the_event_does_not_cover_it() -> None:
    """A participant knows its own next ids: one report listing them in advance must not cover the events."""
    lic = licence_with(LVTR)
    prefiled, covered = (funds(when=ts(day=1, hour=12), amount="5000") for _ in range(2))
    ids = [prefiled["event_id"], covered["event_id"]]
    advance = ev("report", ts(day=1, hour=9), report_type="large_value", refs=ids)
    proper = ev("report", ts(day=1, hour=13), report_type="large_value", refs=ids[1:])
    found = run(lic, [advance, prefiled, covered, proper, price(ts(day=3))])
    assert [(f.evidence[0], f.message) for f in found] == [
        (
            ids[0],
            f"Event {ids[0]} worth 5000 VND had no large-value report by 2025-10-02T12:00:00+07:00; a report "
            "came dated before the event, at 2025-10-01T09:00:00+07:00.",
        )
    ]
    # The same report arriving late, after the event (beyond the allowed lateness), still does not cover it.
    late = [covered, price(ts(day=1, hour=13)), dict(advance, refs=ids[1:]), price(ts(day=3))]
    found = run(lic, late, sort=False)
    assert [(f.evidence[0], f.message.split("; ")[1]) for f in found if f.rule == "lvtr"] == [
        (ids[1], "a report came dated before the event, at 2025-10-01T09:00:00+07:00.")
    ]


def test_structuring_needs_count_and_sum_each_below_threshold() -> None:
    lic = licence_with(f"{{id: st, kind: structuring, {R}, threshold: 300, window: 24h, min_count: 3}}")
    two = [funds(when=ts(hour=h), amount="150") for h in (1, 2)]
    assert run(lic, two) == []
    three = [funds(when=ts(hour=h), amount="100") for h in (1, 2, 3)]  # sum == threshold: >= fires
    found = run(lic, three)
    assert len(found) == 1 and len(found[0].evidence) == 3
    low = [funds(when=ts(hour=h), amount="99") for h in (1, 2, 3)]
    assert run(lic, low) == []
    mixed = [
        funds("deposit", when=ts(hour=1), amount="150"),
        trade(when=ts(hour=2), quantity="1", price="150"),
        funds("withdrawal", when=ts(hour=3), amount="150"),
    ]
    assert run(lic, mixed) == []  # deposit, trade, withdrawal of the same money is not splitting
    with_large = [funds(when=ts(hour=1), amount="300"), *three[1:]]
    assert run(lic, with_large) == []


def test_travel_rule_threshold_inclusive_and_names_required() -> None:
    lic = licence_with(f"{{id: tr, kind: travel_rule, {R}, threshold: 2600000}}")
    full = {"originator": {"name": "A", "account": "1"}, "beneficiary": {"name": "B", "account": "2"}}
    no_name = {"originator": {"name": "A"}, "beneficiary": {"account": "2"}}
    rows = [
        price(),
        onchain(amount="100", travel_rule=full),
        onchain(amount="100", travel_rule=no_name),
        onchain(amount="100"),
        onchain(amount="99.99"),
        funds(amount="999999999"),  # bank rail
    ]
    found = run(lic, rows)
    assert [f.evidence for f in found] == [(rows[2]["event_id"],), (rows[3]["event_id"],)]
    assert "beneficiary name" in found[0].message and "originator and beneficiary" in found[1].message


def test_blocked_addresses_case_insensitive_on_funds_and_transfers(tmp_path) -> None:
    (tmp_path / "list.txt").write_text("# OFAC\n0xBAD1\n\n0xbad2  # second\n")
    text = (
        "licence: {id: L, participant: p1, valid_from: 2025-09-01T00:00:00+07:00, "
        "valid_until: 2026-09-01T00:00:00+07:00, reporting_currency: VND}\n"
        f"rules:\n  - {{id: bl, kind: blocked_addresses, {R}, addresses: ['0xDEAD'], file: list.txt}}\n"
    )
    (tmp_path / "lic.yaml").write_text(text)
    from sandboxwatch.rules_engine.licence import load_licence

    lic = load_licence(tmp_path / "lic.yaml")
    transfer: dict[str, Any] = dict(chain="ethereum", tx_hash="0x1", log_index=0, block=1, asset="USDT", amount="1")
    found = run(
        lic,
        [
            onchain(address="0xdead"),
            ev("transfer", **transfer, **{"from": "0xok", "to": "0xBaD2"}),
            ev("transfer", **transfer, **{"from": "0xbad1", "to": "0xok"}),
            ev("transfer", **transfer, **{"from": "0xok", "to": "0xok2"}),
        ],
    )
    assert [f.subject for f in found] == ["c1", "0xBaD2", "0xbad1"]


def test_price_deviation_uses_listed_sources_and_exact_boundary() -> None:
    lic = licence_with(f"{{id: fp, kind: price_deviation, {R}, max_pct: 3, sources: [binance]}}")
    found = run(
        lic,
        [
            trade(when=ts(hour=0), price="99999"),  # no reference yet: nothing to compare
            price(ts(hour=1), "1000", source="binance"),
            price(ts(hour=2), "5000", source="other"),  # an untrusted source: not used, and reported
            trade(when=ts(hour=3), price="1030"),  # exactly 3%: allowed
            trade(when=ts(hour=3), price="970"),
            trade(when=ts(hour=3), price="1030.01"),
            trade(when=ts(hour=3), price="969.99"),
        ],
    )
    assert [(f.rule, str(f.observed)) for f in found] == [
        ("price_refused", "None"),
        ("fp", "3.0010"),
        ("fp", "3.0010"),
    ]


def test_self_trade() -> None:
    lic = licence_with(f"{{id: wash, kind: self_trade, {R}}}")
    rows = [trade(counterparty_account="c1"), trade(counterparty_account="c2"), trade()]
    assert [f.evidence for f in run(lic, rows)] == [(rows[0]["event_id"],)]


def test_reserve_coverage_ratio_boundary() -> None:
    lic = licence_with(f"{{id: res, kind: reserve_coverage, {R}, min_ratio: 1.0}}")
    reserve = dict(asset="USDT")
    found = run(
        lic,
        [
            ev("reserve", **reserve, custody_balance="100", client_liabilities="100"),
            ev("reserve", **reserve, custody_balance="99.99", client_liabilities="100"),
            ev("reserve", **reserve, custody_balance="0", client_liabilities="0"),
        ],
    )
    assert len(found) == 1 and found[0].observed == Decimal("0.9999")


def test_max_accounts_counts_distinct_verified_accounts() -> None:
    lic = licence_with(f"{{id: users, kind: max_accounts, {R}, max: 2}}")
    found = run(
        lic,
        [
            account("a", ts(hour=1)),
            account("a", ts(hour=2)),  # same account again
            account("b", ts(hour=3)),
            account("c", ts(hour=4), kyc_status="pending"),
            account("b", ts(hour=5), kyc_status="revoked"),
            account("c", ts(hour=6)),  # back to 2
            account("d", ts(hour=7)),  # 3 > 2
        ],
    )
    assert [f.subject for f in found] == ["d"] and found[0].observed == 3


PERIODIC = f"{{id: rep, kind: periodic_report, {R}, every: month, due_day: 10}}"


def test_periodic_report_due_at_end_of_due_day() -> None:
    lic = licence_with(PERIODIC)
    start = price("2025-11-05T00:00:00+07:00")
    filed = ev("report", "2025-11-10T23:59:59+07:00", report_type="periodic", period="2025-10")
    after_due = price("2025-11-11T00:00:01+07:00")
    assert run(lic, [start, filed, after_due]) == []
    found = run(lic, [start, after_due])
    assert len(found) == 1 and "2025-10" in found[0].message
    assert found[0].ts is not None and found[0].ts.isoformat() == "2025-11-11T00:00:00+07:00"


def test_periodic_report_not_judged_for_deadlines_before_the_data() -> None:
    lic = licence_with(PERIODIC)
    # Data starts 2025-11-20: the October report (due 11-10) may have been filed before the data.
    assert run(lic, [price("2025-11-20T00:00:00+07:00"), price("2025-12-10T12:00:00+07:00")]) == []
    found = run(lic, [price("2025-11-20T00:00:00+07:00"), price("2026-01-12T00:00:00+07:00")])
    assert [f.message.split(" ")[4] for f in found] == ["2025-11", "2025-12"]


def test_periodic_report_quarterly_labels() -> None:
    lic = licence_with(f"{{id: rep, kind: periodic_report, {R}, every: quarter, due_day: 15}}")
    rows = [price("2025-10-20T00:00:00+07:00"), price("2026-01-16T00:00:01+07:00")]
    found = run(lic, rows)
    assert len(found) == 1 and "2025-Q4" in found[0].message
    filed = ev("report", "2026-01-02T00:00:00+07:00", report_type="periodic", period="2025-Q4")
    assert run(lic, [*rows, filed]) == []


def test_participant_limits_each_limit() -> None:
    lic = licence_with(
        f"{{id: cap, kind: participant_limits, {R}, min_charter_capital_vnd: 10000000000000, "
        "max_foreign_ownership_pct: 49, min_institutional_ownership_pct: 35}"
    )
    ok = ev(
        "participant",
        charter_capital_vnd="10000000000000",
        foreign_ownership_pct="49",
        institutional_ownership_pct="35",
    )
    bad = ev(
        "participant",
        charter_capital_vnd="9999999999999",
        foreign_ownership_pct="49.01",
        institutional_ownership_pct="34.9",
    )
    found = run(lic, [ok, bad])
    assert len(found) == 3 and len({f.finding_id for f in found}) == 3


def test_events_of_other_participants_are_ignored_but_a_named_publishers_prices_count() -> None:
    """A market feed named in reference_prices.publishers values events; another participant's prices do not
    (a price names its source itself: docs/licence.md)."""
    rule = f"{{id: cap, kind: max_transaction_value, {R}, max: 100}}"
    named = parse_licence(
        HEADER.replace("{sources: [binance]}", "{sources: [binance], publishers: [market-data]}") + f"  - {rule}\n"
    )
    rows = [price(participant="market-data"), onchain(amount="1"), trade(participant="someone-else", quantity="1000")]
    assert rules_of(run(named, rows)) == ["cap"]
    assert rules_of(run(licence_with(rule), rows)) == ["valuation_unavailable"]

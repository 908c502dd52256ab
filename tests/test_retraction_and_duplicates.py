"""Retractions are their own event type from a licensed chain source; a `retracts` field elsewhere is just an
extra field; two different events under one id are reported, never merged."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sandboxwatch.cli import main
from sandboxwatch.ingest.chain_events import retraction
from sandboxwatch.rules_engine.builtin_findings import CONFLICTING_DUPLICATE, EVIDENCE_RETRACTED, RETRACTION_REFUSED
from sandboxwatch.rules_engine.engine import Engine
from sandboxwatch.rules_engine.event_parser import event_from_dict
from sandboxwatch.rules_engine.licence import parse_licence
from tests.helpers import DA_NANG, HEADER, account, ev, price, run, trade, ts

R = "severity: breach, clause: c"
CHAIN_HEADER = HEADER.replace(
    "  reporting_currency: VND\n", "  reporting_currency: VND\n  retraction_sources: [ethereum]\n"
)
LICENCE = parse_licence(CHAIN_HEADER + f"  - {{id: bl, kind: blocked_addresses, {R}, addresses: ['0xdead']}}\n")


def _transfer(event_id: str = "t1", block: int = 7, **fields: Any) -> dict[str, Any]:
    row = ev(
        "transfer",
        ts(hour=2),
        event_id=event_id,
        chain="ethereum",
        tx_hash="0x1",
        log_index=0,
        block=block,
        block_hash="0xb7",
        asset="USDT",
        amount="5",
        **{"from": "0xdead", "to": "0xcustody"},
    )
    row.update(fields)
    return row


def _kinds(found: list[Any]) -> list[tuple[str, str]]:
    return [(f.kind, f.severity) for f in found]


def test_the_connectors_retraction_voids_the_evidence_it_names() -> None:
    seen = _transfer()
    withdrawn = retraction(seen, "block 7 left the canonical chain")
    assert withdrawn["type"] == "retraction" and "from" not in withdrawn
    found = run(LICENCE, [seen, withdrawn], sort=False)
    assert _kinds(found) == [("blocked_addresses", "breach"), (EVIDENCE_RETRACTED, "info")]
    assert found[1].evidence == ("t1", "t1:retracted") and "block 7 left the canonical chain" in found[1].message


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"retracts": "t9"}, "no event with that id"),
        ({"chain": "tron"}, "not a retraction source"),
        ({"block": 8}, "was not seen on 'ethereum' in block 8 (0xb7)"),
        ({"block_hash": "0xother"}, "was not seen on 'ethereum' in block 7 (0xother)"),
        ({"block_hash": None}, "was not seen on 'ethereum' in block 7 (no block hash)"),
    ],
)
def test_a_retraction_that_does_not_match_its_event_is_refused(change: dict[str, Any], reason: str) -> None:
    seen = _transfer()
    forged = retraction(seen, "reorg") | change
    found = run(LICENCE, [seen, forged], sort=False)
    assert _kinds(found) == [("blocked_addresses", "breach"), (RETRACTION_REFUSED, "warning")]
    assert reason in found[1].message and found[1].evidence == (forged["retracts"], forged["event_id"])


def test_retraction_needs_a_licensed_source_and_a_chain_observation() -> None:
    no_sources = parse_licence(HEADER + f"  - {{id: bl, kind: blocked_addresses, {R}, addresses: ['0xdead']}}\n")
    seen = _transfer()
    found = run(no_sources, [seen, retraction(seen, "reorg")], sort=False)
    assert _kinds(found)[1] == (RETRACTION_REFUSED, "warning") and "retraction_sources: none" in found[1].message
    a_trade = trade("c1", ts(hour=3), event_id="x1", participant="p1")
    forged = {**retraction(seen, "reorg"), "event_id": "r2", "retracts": "x1"}
    found = run(LICENCE, [price(participant="p1"), account("c1", participant="p1"), a_trade, forged], sort=False)
    # The forged retraction carries the transfer's earlier time: beyond the allowed lateness, said so too.
    found = [f for f in found if f.kind != "late_event"]
    assert _kinds(found) == [(RETRACTION_REFUSED, "warning")] and "not a chain observation" in found[0].message
    # An on-chain deposit is the exchange's report, not the chain connector's observation: not retractable.
    deposit = ev("deposit", ts(hour=3), event_id="dep1", account="c1", asset="USDT", amount="5", rail="onchain",
                 chain="ethereum", address="0xa", tx_hash="0x1", site="DN-SP2")  # fmt: skip
    forged = {**retraction(seen, "reorg"), "event_id": "r3", "retracts": "dep1"}
    found = run(LICENCE, [deposit, forged], sort=False)
    assert _kinds(found)[-1] == (RETRACTION_REFUSED, "warning") and "not a chain observation" in found[-1].message
    # A second retraction of the same event (under another id) is refused: it is already void.
    first = retraction(seen, "reorg")
    again = {**first, "event_id": "t1:retracted-again"}
    found = run(LICENCE, [seen, first, again], sort=False)
    assert _kinds(found)[1:] == [(EVIDENCE_RETRACTED, "info"), (RETRACTION_REFUSED, "warning")]


def test_a_retracts_field_on_any_other_event_is_an_ignored_extra(tmp_path: Path) -> None:
    """The issue's probe: a DOGE/USD trade at an unlicensed site carrying `retracts` escaped every rule."""
    p = "alphatrue-basal-pay"
    rows = [
        price(ts(hour=0), participant=p),
        account("c1", participant=p),
        trade("c1", ts(hour=3), participant=p, base="DOGE", quote="USD", site="HN-01", retracts="anything"),
    ]
    event = event_from_dict(rows[2])
    assert event.type == "trade" and event.extra == {"retracts": "anything"}
    path = tmp_path / "e.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "f.jsonl"
    assert main(["check", "--licence", str(DA_NANG), "--events", str(path), "--out", str(out)]) == 1
    rules = {json.loads(line)["rule"] for line in out.read_text().splitlines()}
    assert {"sites", "assets", "fiat"} <= rules


def test_conflicting_duplicate_is_reported_and_identical_redelivery_is_silent() -> None:
    p = "p1"
    first = trade("c1", ts(hour=3), event_id="d1", participant=p)
    same = json.loads(json.dumps(first))
    same["extra_stamp"] = "received again"  # extras are not content
    same["quantity"] = "100.000"  # the same number written differently
    other = dict(first, quantity="9999999")
    lic = parse_licence(CHAIN_HEADER + f"  - {{id: cap, kind: max_transaction_value, {R}, max: 100000000}}\n")
    found = run(lic, [price(participant=p), account("c1", participant=p), first, same, other], sort=False)
    assert _kinds(found) == [(CONFLICTING_DUPLICATE, "warning")]
    assert found[0].evidence == ("d1",) and "different content" in found[0].message
    engine = Engine(lic)
    for row in (price(participant=p), account("c1", participant=p), first, same, other, other):
        engine.process(event_from_dict(row))
    # The conflicting version again is a re-delivery of it: a duplicate, reported once.
    assert engine.stats.duplicates == 3 and engine.stats.conflicts == 1


def test_digest_survives_a_snapshot_in_another_process(tmp_path: Path) -> None:
    """Engine state moves between processes (snapshots): the digest must not depend on the hash salt."""
    import pickle
    import subprocess
    import sys

    lic_path = tmp_path / "l.yaml"
    lic_path.write_text(CHAIN_HEADER + f"  - {{id: cap, kind: max_transaction_value, {R}, max: 100000000}}\n")
    first = trade("c1", ts(hour=3), event_id="d1", participant="p1")
    script = (
        "import json, pickle, sys\n"
        "from rules_engine.engine import Engine\n"
        "from rules_engine.event_parser import event_from_dict\n"
        "from rules_engine.licence import load_licence\n"
        f"e = Engine(load_licence({str(lic_path)!r}))\n"
        f"e.process(event_from_dict(json.loads({json.dumps(json.dumps(first))})))\n"
        "sys.stdout.buffer.write(pickle.dumps(e))\n"
    )
    blob = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, check=True, env={"PYTHONHASHSEED": "7", "PYTHONPATH": "."}
    ).stdout
    engine = pickle.loads(blob)
    assert engine.process(event_from_dict(first)) == []
    assert _kinds(engine.process(event_from_dict(dict(first, quantity="5")))) == [(CONFLICTING_DUPLICATE, "warning")]


def test_an_old_snapshot_with_a_set_of_ids_still_loads() -> None:
    import dataclasses

    from sandboxwatch.rules_engine.licence import Licence

    old_header = dataclasses.replace(LICENCE.header)
    object.__delattr__(old_header, "retraction_sources")  # as unpickled from before the field existed
    old_licence = Licence(header=old_header, rules=LICENCE.rules, source=LICENCE.source)
    engine = Engine(LICENCE)
    state = dict(engine.__dict__, licence=old_licence, header=old_header)
    state["_seen"] = {"t1"}
    del state["_observed"], state["_retraction_sources"]
    restored = Engine.__new__(Engine)
    restored.__setstate__(state)
    assert restored.process(event_from_dict(_transfer())) == []  # a re-delivery, as before
    assert restored.licence.fingerprint() != LICENCE.fingerprint()  # so the stream replays instead
    seen = _transfer(event_id="t2")
    judged = restored.process(event_from_dict(seen)) + restored.flush()  # the restored reorder buffer works
    assert _kinds(judged) == [("blocked_addresses", "breach")]
    refused = restored.process(event_from_dict(retraction(seen, "reorg"))) + restored.flush()
    assert _kinds(refused) == [(RETRACTION_REFUSED, "warning")]


SAMPLES: dict[str, dict[str, Any]] = {
    "account": account("c1", participant="p1", wallets=["0xaa", "0xbb"]),
    "trade": trade("c1", participant="p1", counterparty_account="c2"),
    "deposit": ev("deposit", account="c1", asset="USDT", amount="5", rail="onchain", chain="ethereum",
                  address="0xa", tx_hash="0x1",
                  travel_rule={"originator": {"name": "A", "account": "1"}, "beneficiary": {"name": "B"}}),
    "transfer": _transfer(token="0xt"),
    "price": price(participant="p1"),
    "report": ev("report", report_type="large_value", refs=["a", "b"], period="2025-10"),
    "reserve": ev("reserve", asset="USDT", custody_balance="10", client_liabilities="9"),
    "participant": ev("participant", charter_capital_vnd="1", foreign_ownership_pct="2",
                      institutional_ownership_pct="3"),
    "retraction": retraction(_transfer(), "reorg"),
}  # fmt: skip


def _changed(value: Any) -> Any:
    """Another valid value of the same field."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, list):
        return [*value[:-1], value[-1] + "x"]
    if isinstance(value, dict):
        return {key: _changed(item) for key, item in value.items()}
    if value in {"buy", "verified", "domestic", "large_value", "onchain"}:
        return {"buy": "sell", "verified": "pending", "domestic": "foreign", "large_value": "suspicious",
                "onchain": "bank"}[value]  # fmt: skip
    if value.startswith("2025-"):
        return value.replace(":00+07:00", ":01+07:00")
    return value + "1" if value[-1].isdigit() else value + "x"


@pytest.mark.parametrize("kind", sorted(SAMPLES))
def test_every_contract_field_is_in_the_digest(kind: str) -> None:
    from sandboxwatch.rules_engine.event_digest import content_digest
    from sandboxwatch.rules_engine.event_parser import KNOWN_FIELDS

    row = SAMPLES[kind]
    digest = content_digest(event_from_dict(row))
    assert content_digest(event_from_dict(dict(row, unknown_extra="x"))) == digest
    fields = [name for name in row if name in KNOWN_FIELDS[kind] | {"ts", "site"}]
    changed = 0
    for name in fields:
        value = row[name]
        other = dict(row, **{name: _changed(value)})
        if name == "period":
            other[name] = "2025-11"
        assert content_digest(event_from_dict(other)) != digest, name
        changed += 1
    assert changed == len(fields) >= 3


def test_parsed_lines_compare_by_their_bytes() -> None:
    from sandboxwatch.rules_engine.event_reader import read_jsonl
    from sandboxwatch.rules_engine.self_check import run_check

    rows = [price(participant="p1"), account("c1", participant="p1"), trade("c1", ts(hour=3), event_id="d1")]
    lines = [json.dumps(r) for r in rows]
    lic = parse_licence(CHAIN_HEADER + f"  - {{id: cap, kind: max_transaction_value, {R}, max: 100000000}}\n")
    again = run_check(lic, read_jsonl([*lines, lines[2], "  " + lines[2] + "  "], "f"))
    assert again.findings == [] and again.stats.duplicates == 2  # surrounding blanks are not the line
    respaced = json.dumps(rows[2], indent=1).replace("\n", "")
    changed = json.dumps(dict(rows[2], price="26001"))
    found = run_check(lic, read_jsonl([*lines, respaced, changed], "f")).findings
    assert [(f.kind, f.evidence) for f in found] == [(CONFLICTING_DUPLICATE, ("d1",))] * 2
    assert found[0].finding_id != found[1].finding_id  # each distinct version is reported once

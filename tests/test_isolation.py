"""One event that makes a rule raise is contained: a finding says so, the next event is still judged."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from sandboxwatch.rules_engine.builtin_findings import INVALID_EVENT
from sandboxwatch.rules_engine.engine import Engine
from sandboxwatch.rules_engine.events import TradeEvent
from sandboxwatch.rules_engine.isolation import process_isolated
from sandboxwatch.rules_engine.licence import load_licence

LICENCE = Path(__file__).resolve().parents[1] / "config" / "licences" / "da-nang-pilot.yaml"


def _trade(event_id: str, quantity: str, price: str, participant: str, minute: int = 0) -> TradeEvent:
    return TradeEvent(
        event_id, "trade", participant, datetime(2025, 10, 1, 0, minute, tzinfo=UTC), "DN-SP2", {},
        account="acct-1", side="buy", base="USDT", quote="VND", quantity=Decimal(quantity),
        price=Decimal(price), counterparty_account=None,
    )  # fmt: skip


def test_an_event_that_overflows_a_rule_becomes_an_invalid_event_finding_and_the_next_is_judged() -> None:
    licence = load_licence(LICENCE)
    engine = Engine(licence)
    participant = licence.header.participant
    # Built directly, past the parser's bounds: the engine's own arithmetic overflows on it.
    poison = _trade("poison", "1e999999", "1e27", participant)
    # Held in the reorder buffer (allowed lateness 5m): nothing is judged on its arrival.
    assert process_isolated(engine, poison, "events/0", 7, raw='{"event_id":"poison"}') == ([], None)
    # Over the per-transaction cap (200m VND), 10 minutes later: its arrival moves the watermark past the
    # poison, which is judged now; the failure names the poisoned event and its own line, not this one.
    findings, error = process_isolated(engine, _trade("big", "10000", "30000", participant, minute=10), "events/0", 8)
    assert error is not None and error.event_id == "poison" and error.line == 7 and error.source == "events/0"
    assert "Overflow" in error.reason and error.raw == '{"event_id":"poison"}'
    assert [f.kind for f in findings] == [INVALID_EVENT]
    assert findings[0].evidence == ("poison",)
    assert engine.failures == []
    # The engine still judges the next event normally.
    after = engine.flush()
    assert "max_transaction_value" in {f.kind for f in after}
    assert [f.evidence for f in after if f.kind == "max_transaction_value"] == [("big",)]
    assert engine.failures == []

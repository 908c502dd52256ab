"""What a rule kind module provides: parameters, the event types it reads, a check, optional clock handling
for deadline rules, the runbook of its alert and the violation it injects into a simulated day. Modules stay
plain functions over (rule, event, facts, state)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sandboxwatch.rules_engine.events import Event
from sandboxwatch.rules_engine.facts import Facts
from sandboxwatch.rules_engine.findings import Finding
from sandboxwatch.rules_engine.licence_params import ParamReader
from sandboxwatch.rules_engine.rule_spec import RuleSpec

Findings = Sequence[Finding] | None
Check = Callable[[RuleSpec, Event, Facts, Any], Findings]
OnClock = Callable[[RuleSpec, datetime, Facts, Any], Findings]
# How much of a participant-level limit is in use, by limit name: 1 means at the limit, above 1 a breach.
Utilisation = Callable[[RuleSpec, Any], Mapping[str, Decimal]]


def _no_state(params: Any) -> None:
    return None


@dataclass(frozen=True, slots=True)
class RuleKind:
    name: str
    parse: Callable[[ParamReader], Any]
    event_types: Callable[[Any], frozenset[str]]
    check: Check
    new_state: Callable[[Any], Any] = _no_state
    on_clock: OnClock | None = None
    # True when the check reads facts.value, so the engine values the event (once) before calling it.
    valued: bool = False
    utilisation: Utilisation | None = None
    # What the desk on duty does when a finding of this kind fires (the alert's runbook annotation).
    runbook: str = ""
    # Writes one violation of this kind into a simulated day (``sandboxwatch simulate``): called with the
    # simulator's Injection and the licence's rule; the engine itself never calls it.
    inject: Callable[[Any, RuleSpec], None] | None = None


def fixed(*types: str) -> Callable[[Any], frozenset[str]]:
    chosen = frozenset(types)
    return lambda params: chosen


def no_params(reader: ParamReader) -> None:
    return None

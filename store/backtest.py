"""Backtesting a licence version: replay the stored events through it and compare with the live version.

Both versions run over the same stored events (everything up to ``--to``, so windows and KYC state are
built from the full history), and only findings whose event time falls in ``--from``..``--to`` count.
Comparing two replays isolates what the licence change does; how many stored live findings the baseline
replay reproduces is reported too, so a reviewer sees whether the store and the replay agree."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sandboxwatch.rules_engine.builtin_findings import INVALID_EVENT
from sandboxwatch.rules_engine.findings import Finding
from sandboxwatch.rules_engine.licence import Licence, parse_licence
from sandboxwatch.rules_engine.self_check import run_check
from sandboxwatch.store.clickhouse_store import Store

# Invalid-event findings come from dead letters, not from events: no replay can reproduce them.
NOT_REPLAYABLE = frozenset({INVALID_EVENT})


@dataclass(frozen=True, slots=True)
class BacktestResult:
    participant: str
    events: int
    appears: list[Finding]
    disappears: list[Finding]
    unchanged: int
    live_stored: int
    live_reproduced: int

    def summary(self) -> str:
        by_rule = Counter(f"+{f.rule}" for f in self.appears) + Counter(f"-{f.rule}" for f in self.disappears)
        changes = ", ".join(f"{rule} {n}" for rule, n in sorted(by_rule.items())) or "none"
        return (
            f"{self.participant}: {self.events} stored events replayed; {len(self.appears)} findings would appear, "
            f"{len(self.disappears)} would disappear, {self.unchanged} unchanged (by rule: {changes}); "
            f"the live version's replay reproduces {self.live_reproduced} of {self.live_stored} stored findings"
        )


class BacktestError(ValueError):
    pass


def live_licence(store: Store, participant: str, exclude_sha: str | None = None) -> Licence:
    """The licence version the monitor loaded most recently for the participant (kept in licence_versions),
    other than ``exclude_sha`` (the new version, when the monitor has already loaded it too). When the store
    holds no other version, the new one is the live one: it is returned, and a backtest of it against itself
    rightly shows no change (this used to say "no live licence version", which was not true)."""
    versions = store.licence_versions(participant)
    if not versions:
        raise BacktestError(
            f"no licence version of {participant} in the store (the monitor records each version it loads); "
            "give --live FILE"
        )
    body, path, _ = next((v for v in versions if v[2] != exclude_sha), versions[0])
    return parse_licence(body, path, Path(path).parent)


def _in_period(finding: Finding, start: datetime, end: datetime) -> bool:
    return finding.ts is not None and start <= finding.ts <= end and finding.kind not in NOT_REPLAYABLE


def backtest(store: Store, new: Licence, live: Licence, start: datetime, end: datetime) -> BacktestResult:
    participant = new.participant
    if live.participant != participant:
        raise BacktestError(f"the licences are for {live.participant} and {participant}, not the same participant")
    records = [r for r in store.stored_events(participant) if r.event.ts <= end]
    events = [(0, r.event) for r in records]
    new_found = {f.finding_id: f for f in run_check(new, events, end).findings if _in_period(f, start, end)}
    live_found = {f.finding_id: f for f in run_check(live, events, end).findings if _in_period(f, start, end)}
    stored = store.finding_ids_between(participant, start, end, exclude_kinds=NOT_REPLAYABLE)
    return BacktestResult(
        participant=participant,
        events=len(records),
        appears=sorted((f for k, f in new_found.items() if k not in live_found), key=_order),
        disappears=sorted((f for k, f in live_found.items() if k not in new_found), key=_order),
        unchanged=len(set(new_found) & set(live_found)),
        live_stored=len(stored),
        live_reproduced=len(stored & set(live_found)),
    )


def _order(finding: Finding) -> tuple[str, str]:
    return (finding.ts.isoformat() if finding.ts else "", finding.finding_id)

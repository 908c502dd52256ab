"""The case workflow on findings, as pure rules: which transition is allowed from which state, and when a
case falls due. No I/O here, so the API, the bulk endpoint and the tests judge a transition the same way.

A case exists for every finding and starts ``open`` (no record is written for that: the findings trail
already proves the finding arrived). Actions:

- ``acknowledge``: open -> acknowledged (regulators);
- ``resolve``: open or acknowledged -> resolved, with a resolution (remedied, accepted_risk,
  false_positive) and a non-empty reason (regulators);
- ``reopen``: resolved -> open, with a reason (regulators);
- ``assign``: open or acknowledged, the state unchanged, to a named person (empty: unassigned) (regulators);
- ``answer``: open or acknowledged, the state unchanged, a remediation note of at most ``NOTE_MAX``
  characters (the participant whose case it is).

A refused transition raises ``WorkflowError`` carrying 409 (the case's state does not allow it) or 422
(the request itself is incomplete), with the reason."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

STATES = ("open", "acknowledged", "resolved")
RESOLUTIONS = ("remedied", "accepted_risk", "false_positive")
ACTIONS = ("acknowledge", "resolve", "reopen", "assign", "answer")
REGULATOR_ACTIONS = frozenset({"acknowledge", "resolve", "reopen", "assign"})
PARTICIPANT_ACTIONS = frozenset({"answer"})
NOTE_MAX = 16_000  # a remediation note: a few pages of text, not a document store
REASON_MAX = 2_000
ASSIGNEE_MAX = 200

# When a case falls due after its finding reached the store, by severity (``api serve --case-due``).
# A due time is days or weeks; ten years is past any real one, and keeps due dates inside what the store's
# DateTime columns and Python's datetime hold (99999999999d overflowed both).
MAX_DUE = timedelta(days=3650)
DEFAULT_DUE = {
    "critical": timedelta(days=1),
    "breach": timedelta(days=3),
    "warning": timedelta(days=10),
    "info": timedelta(days=30),
}


class WorkflowError(ValueError):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True, slots=True)
class CaseState:
    state: str = "open"
    assignee: str = ""
    resolution: str = ""


@dataclass(frozen=True, slots=True)
class Request:
    """What a caller asks for; fields an action does not use must be empty."""

    action: str
    resolution: str = ""
    reason: str = ""
    assignee: str | None = None
    note: str = ""


@dataclass(frozen=True, slots=True)
class Change:
    """One transition to record: the state before and after, and what was said."""

    action: str
    from_state: str
    to_state: str
    resolution: str = ""
    reason: str = ""
    assignee: str = ""
    note: str = ""


def decide(current: CaseState, request: Request) -> Change:
    """The transition ``request`` makes from ``current``, or ``WorkflowError`` with the reason it cannot."""
    action, state = request.action, current.state
    reason = request.reason.strip()
    if action not in ACTIONS:
        raise WorkflowError(422, f"unknown action {action!r}; expected one of {', '.join(ACTIONS)}")
    if len(reason) > REASON_MAX:
        raise WorkflowError(422, f"reason: at most {REASON_MAX} characters")
    if action == "acknowledge":
        if state != "open":
            raise WorkflowError(409, f"cannot acknowledge a case that is {state} (only an open case)")
        return Change(action, state, "acknowledged", "", reason, current.assignee)
    if action == "resolve":
        if request.resolution not in RESOLUTIONS:
            raise WorkflowError(422, f"resolution must be one of {', '.join(RESOLUTIONS)}")
        if not reason:
            raise WorkflowError(422, "a reason is required to resolve a case")
        if state == "resolved":
            raise WorkflowError(409, f"the case is already resolved ({current.resolution})")
        return Change(action, state, "resolved", request.resolution, reason, current.assignee)
    if action == "reopen":
        if not reason:
            raise WorkflowError(422, "a reason is required to reopen a case")
        if state != "resolved":
            raise WorkflowError(409, f"cannot reopen a case that is {state} (only a resolved case)")
        return Change(action, state, "open", "", reason, current.assignee)
    if state == "resolved":
        raise WorkflowError(409, f"the case is resolved ({current.resolution}); reopen it first")
    if action == "assign":
        if request.assignee is None:
            raise WorkflowError(422, "assignee is required (an empty string unassigns)")
        assignee = request.assignee.strip()
        if len(assignee) > ASSIGNEE_MAX:
            raise WorkflowError(422, f"assignee: at most {ASSIGNEE_MAX} characters")
        if assignee == current.assignee:
            raise WorkflowError(409, f"the case is already assigned to {assignee!r}" if assignee else "not assigned")
        return Change(action, state, state, current.resolution, reason, assignee)
    note = request.note.strip()
    if not note:
        raise WorkflowError(422, "the remediation note is empty")
    if len(note) > NOTE_MAX:
        raise WorkflowError(422, f"the remediation note is longer than {NOTE_MAX} characters")
    return Change(action, state, state, current.resolution, "", current.assignee, note)


def allowed_for(role: str) -> frozenset[str]:
    return REGULATOR_ACTIONS if role == "regulator" else PARTICIPANT_ACTIONS if role == "participant" else frozenset()


@dataclass(frozen=True, slots=True)
class DueTimes:
    """How long after its finding was stored a case falls due, by severity."""

    after: Mapping[str, timedelta] = field(default_factory=lambda: dict(DEFAULT_DUE))

    def seconds(self, severity: str) -> int:
        return int(self.after.get(severity, DEFAULT_DUE["info"]).total_seconds())

    @classmethod
    def parse(cls, text: str) -> DueTimes:
        """``critical=1d,breach=3d,warning=10d,info=30d`` (``h`` for hours); severities not named keep
        their default."""
        after = dict(DEFAULT_DUE)
        named: set[str] = set()
        for part in filter(None, (p.strip() for p in text.split(","))):
            name, _, value = part.partition("=")
            name, value = name.strip(), value.strip()
            if name not in DEFAULT_DUE:
                raise ValueError(f"{part!r}: severity must be one of {', '.join(DEFAULT_DUE)}")
            if name in named:
                raise ValueError(f"{part!r}: {name} is given twice; which due time is meant?")
            named.add(name)
            unit = value[-1:]
            number = value[:-1]
            if unit not in ("d", "h") or not number.isascii() or not number.isdigit():
                raise ValueError(f"{part!r}: expected a whole number of days or hours, like 3d or 12h")
            due = timedelta(days=int(number)) if len(number) <= 9 and unit == "d" else None
            due = timedelta(hours=int(number)) if len(number) <= 9 and unit == "h" else due
            if due is None or due > MAX_DUE:
                raise ValueError(f"{part!r}: at most {MAX_DUE.days} days ({MAX_DUE.days}d or {MAX_DUE.days * 24}h)")
            if not due:
                raise ValueError(f"{part!r}: at least 1h (a case due the moment it opens is overdue at once)")
            after[name] = due
        return cls(after)

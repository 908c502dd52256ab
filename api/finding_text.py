"""A finding's message in the reader's language, written from its structured fields.

The stored ``message`` is part of the finding's hashed, chained record and stays as the rule wrote it (in
English); nothing here changes it. The localised text is rendered at read time from the fields every
finding carries (kind, subject, observed, limit), one sentence per rule kind in each language."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from sandboxwatch.api import i18n
from sandboxwatch.rules_engine.builtin_findings import BUILTIN_KINDS
from sandboxwatch.rules_engine.rules import RULE_KINDS

# Kinds the engine itself emits (not a licence rule): each has a sentence too.
ENGINE_KINDS = tuple(BUILTIN_KINDS)
FINDING_KINDS = (*sorted(RULE_KINDS), *ENGINE_KINDS)
_RATIO_KINDS = frozenset({"reserve_coverage"})  # observed and limit are ratios, read as percentages
_PERCENT_KINDS = frozenset({"price_deviation"})  # already in percent


def _value(text: Any, kind: str, language: str) -> str | None:
    if text is None or text == "":
        return None
    try:
        value = Decimal(str(text))
    except InvalidOperation:
        return str(text)
    if not value.is_finite():
        return str(text)
    if kind in _RATIO_KINDS:
        return i18n.percent(value, language)
    if kind == "participant_limits" and abs(value) >= 1_000_000:
        return i18n.amount(value, language)  # charter capital, as the licence states it (VND 10,000bn)
    if kind in _PERCENT_KINDS:
        return i18n.number(value.quantize(Decimal("0.01")).normalize(), language)
    return i18n.number(value, language)


def render(finding: dict[str, Any], language: str) -> str:
    kind = str(finding.get("kind") or "")
    fields = {
        "subject": str(finding.get("subject") or finding.get("participant") or ""),
        "rule": str(finding.get("rule") or ""),
        "observed": _value(finding.get("observed"), kind, language),
        "limit": _value(finding.get("limit"), kind, language),
    }
    key = f"finding.{kind}"
    template = i18n.catalogue(language).get(key)
    if template is None or any(fields[name] is None for name in ("observed", "limit") if f"{{{name}}}" in template):
        key = "finding.generic"
    return i18n.text(language, key, **{k: v or "" for k, v in fields.items()})


def localise(findings: list[dict[str, Any]], language: str) -> list[dict[str, Any]]:
    """Each finding with ``message_text`` added in the language; the stored ``message`` is kept as is."""
    for item in findings:
        item["message_text"] = render(item, language)
    return findings

"""A licence limit's reading in plain words, and how close it is to the licence's own threshold.

The engine reports each participant-level limit as one "use" ratio: observed over a maximum, or the minimum
over observed (so a participant holding half the required capital uses 200% of it). That ratio drives the
Prometheus warning at 80% and is right for alerting, but read as a percentage bar it tells a person the
opposite of the truth. Here the same ratio is turned back into what was held against what the licence asks
(``holds 5,000bn of the 10,000bn VND required charter capital (50%)``), with the direction of the limit
(a minimum: more is better; a maximum: less is better) and a colour band measured from the licence's
threshold: ``breach`` past it, ``near`` within the alerting margin (the 80% use the alerts warn at: a
maximum over 80% used, a minimum held at less than 125% of the requirement), ``ok`` otherwise."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from sandboxwatch.alerts.rule_render import UTILISATION_WARNING
from sandboxwatch.api import i18n
from sandboxwatch.rules_engine.licence import Licence
from sandboxwatch.rules_engine.rule_spec import RuleSpec

Band = Literal["ok", "near", "breach"]
Direction = Literal["minimum", "maximum"]
NEAR = Decimal(str(UTILISATION_WARNING))
_ONE = Decimal(1)
_RESERVE_PREFIX = "min_ratio:"


@dataclass(frozen=True, slots=True)
class LimitReading:
    rule: str
    limit: str
    kind: str
    clause: str
    direction: Direction
    share: Decimal  # the engine's use ratio (over 1: outside the limit)
    observed: Decimal | None  # what the participant holds or uses, in the limit's unit
    required: Decimal | None  # the licence's threshold, in the same unit
    asset: str | None = None

    @property
    def level(self) -> Decimal | None:
        """Observed as a share of the threshold: the capital held over the minimum, the cap used."""
        if not self.share.is_finite():
            return Decimal(0) if self.direction == "minimum" else None
        if self.direction == "minimum":
            return _ONE / self.share if self.share else None
        return self.share

    @property
    def band(self) -> Band:
        return band(self.share)

    def text(self, language: str) -> str:
        level = self.level
        shown = _level_text(level, language) if level is not None else "-"
        if self.observed is None or self.required is None:
            key = "limit.generic_min" if self.direction == "minimum" else "limit.generic_max"
            return i18n.text(language, key, limit=f"{self.rule} {self.limit}", level=shown)
        if self.kind == "reserve_coverage":
            return i18n.text(
                language,
                "limit.reserve_ratio",
                asset=self.asset or "",
                observed=i18n.percent(self.observed, language),
                required=i18n.percent(self.required, language),
            )
        if self.limit == "charter_capital_vnd":
            observed, required = i18n.amount(self.observed, language), i18n.amount(self.required, language)
        else:
            observed, required = _plain(self.observed, language), _plain(self.required, language)
        key = "limit.max_accounts" if self.kind == "max_accounts" else f"limit.{self.limit}"
        return i18n.text(language, key, observed=observed, required=required, level=shown)

    def to_dict(self, language: str) -> dict[str, Any]:
        level = self.level
        return {
            "rule": self.rule,
            "limit": self.limit,
            "kind": self.kind,
            "clause": self.clause,
            "direction": self.direction,
            "share": format(self.share, "f"),
            "observed": None if self.observed is None else format(six_places(self.observed), "f"),
            "required": None if self.required is None else format(self.required, "f"),
            "level": None if level is None else format(six_places(level), "f"),
            "band": self.band,
            "band_text": i18n.text(language, f"band.{self.band}"),
            "text": self.text(language),
        }


def six_places(value: Decimal) -> Decimal:
    """At most six decimal places (a derived value such as 1 / 0.952381 has twenty-eight)."""
    if not value.is_finite() or value == value.to_integral_value():
        return value
    return value.quantize(Decimal("0.000001")).normalize()


def band(share: Decimal) -> Band:
    """Past the threshold is a breach only strictly past it: the rules accept a value equal to the limit."""
    if not share.is_finite() or share > _ONE:
        return "breach"
    return "near" if share >= NEAR else "ok"


def _level_text(level: Decimal, language: str) -> str:
    """A percentage with as many places as it takes not to round a value past the threshold onto it
    (10,001 of a 10,000 cap is 100.01%, not 100%)."""
    for places in range(1, 5):
        shown = (level * 100).quantize(Decimal(1).scaleb(-places))
        if (shown == 100) == (level == _ONE):
            break
    return i18n.percent(level, language, places)


def _plain(value: Decimal, language: str) -> str:
    return i18n.number(value.quantize(Decimal("0.01")).normalize(), language)


def _minimum(share: Decimal, required: Decimal | None) -> Decimal | None:
    """What is held, from use = required / held."""
    if required is None:
        return None
    if not share.is_finite():
        return Decimal(0)
    return required / share if share else None


def read(licence: Licence, rule_id: str, limit: str, share: Decimal) -> LimitReading:
    rule = licence.rule(rule_id)
    if rule.kind == "participant_limits":
        return _participant_limit(rule, limit, share)
    if rule.kind == "reserve_coverage" and limit.startswith(_RESERVE_PREFIX):
        required = rule.params.min_ratio
        return LimitReading(rule.id, limit, rule.kind, rule.clause, "minimum", share, _minimum(share, required),
                            required, limit[len(_RESERVE_PREFIX):])  # fmt: skip
    if rule.kind == "max_accounts":
        cap = Decimal(rule.params.max)
        used = (share * cap).quantize(_ONE) if share.is_finite() else None
        return LimitReading(rule.id, limit, rule.kind, rule.clause, "maximum", share, used, cap)
    return LimitReading(rule.id, limit, rule.kind, rule.clause, "maximum", share, None, None)


def _participant_limit(rule: RuleSpec, limit: str, share: Decimal) -> LimitReading:
    params = rule.params
    if limit == "foreign_ownership_pct":
        cap = params.max_foreign_ownership_pct
        used = share * cap if share.is_finite() and cap is not None else None
        return LimitReading(rule.id, limit, rule.kind, rule.clause, "maximum", share, used, cap)
    required = (
        params.min_charter_capital_vnd if limit == "charter_capital_vnd" else params.min_institutional_ownership_pct
    )
    return LimitReading(rule.id, limit, rule.kind, rule.clause, "minimum", share, _minimum(share, required), required)


def readings(licence: Licence, shares: list[tuple[str, str, Decimal]]) -> list[LimitReading]:
    return [read(licence, rule, limit, share) for rule, limit, share in shares]

"""The registry of rule kinds: one module per kind, each exporting ``KIND`` (its parameters, check, runbook
and simulator injection); a new kind is its module and one line here.

The order is the order a simulated day injects violations in: ``max_accounts`` is last because its
injection counts the accounts the others opened."""

from __future__ import annotations

from importlib import import_module

from sandboxwatch.rules_engine.rules.base import RuleKind

_MODULES = (
    "licence_period",
    "allowed_sites",
    "allowed_assets",
    "settlement_currency",
    "kyc_required",
    "investor_class",
    "registered_wallet",
    "max_transaction_value",
    "rolling_volume",
    "large_value_report",
    "structuring",
    "travel_rule",
    "blocked_addresses",
    "price_deviation",
    "self_trade",
    "reserve_coverage",
    "participant_limits",
    "periodic_report",
    "max_accounts",
)


def _kind(module: str) -> RuleKind:
    kind: RuleKind = import_module(f"{__name__}.{module}").KIND
    if kind.name != module:
        raise ImportError(f"rules_engine/rules/{module}.py defines kind {kind.name!r}: a kind is named for its module")
    return kind


RULE_KINDS: dict[str, RuleKind] = {module: _kind(module) for module in _MODULES}

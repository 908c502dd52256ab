"""The registry of rule kinds: one module per kind, each exporting ``KIND``."""

from __future__ import annotations

from sandboxwatch.rules_engine.rules import (
    allowed_assets,
    allowed_sites,
    blocked_addresses,
    investor_class,
    kyc_required,
    large_value_report,
    licence_period,
    max_accounts,
    max_transaction_value,
    participant_limits,
    periodic_report,
    price_deviation,
    registered_wallet,
    reserve_coverage,
    rolling_volume,
    self_trade,
    settlement_currency,
    structuring,
    travel_rule,
)
from sandboxwatch.rules_engine.rules.base import RuleKind

RULE_KINDS: dict[str, RuleKind] = {
    module.KIND.name: module.KIND
    for module in (
        licence_period,
        allowed_sites,
        allowed_assets,
        settlement_currency,
        kyc_required,
        investor_class,
        registered_wallet,
        max_transaction_value,
        rolling_volume,
        large_value_report,
        structuring,
        travel_rule,
        blocked_addresses,
        price_deviation,
        self_trade,
        reserve_coverage,
        max_accounts,
        periodic_report,
        participant_limits,
    )
}

"""One runbook sentence per rule kind: what the desk on duty does when that kind of finding fires.

Kept beside the alert generator (the single source for alerts, dashboard and runbooks), so a new rule
kind without a runbook fails the alert-render test instead of paging someone with no instructions."""

from __future__ import annotations

RUNBOOKS: dict[str, str] = {
    "licence_period": "Activity outside the licence term: confirm the dates with the participant and order a halt "
    "of new business until a renewed licence is on file.",
    "allowed_sites": "A customer transacted from a site outside the licensed testing sites: ask the participant "
    "for the session record and block that channel.",
    "allowed_assets": "An unapproved asset was traded or moved: ask the participant to suspend the instrument and "
    "explain how it was listed.",
    "settlement_currency": "Settlement in a currency the licence does not permit: request the settlement records "
    "and confirm reversal or conversion.",
    "kyc_required": "A customer transacted without completed eKYC (or an own verified bank account): ask the "
    "participant to freeze the account until verification is complete.",
    "investor_class": "A customer of an ineligible investor class transacted: ask the participant to freeze the "
    "account and report how onboarding admitted it.",
    "registered_wallet": "Funds moved to or from a wallet the customer never registered: request the wallet "
    "ownership evidence and hold further withdrawals to it.",
    "max_transaction_value": "A single transaction above the licence cap: obtain the participant's explanation and "
    "check whether limits are enforced in its order system.",
    "rolling_volume": "A customer exceeded the rolling volume cap: ask the participant to restrict the account "
    "until the window clears and review its limit controls.",
    "large_value_report": "A large-value transaction was not reported in time: request the overdue report now "
    "and record the delay.",
    "structuring": "Several transactions just below the reporting threshold: escalate to AML review and ask for a "
    "suspicious-transaction assessment.",
    "travel_rule": "A transfer above the Travel Rule threshold lacks originator/beneficiary data: request the "
    "missing data and hold the counterparty until it is supplied.",
    "blocked_addresses": "Funds touched a sanctioned or blocked address: escalate immediately to the sanctions "
    "officer and order the participant to freeze the related accounts.",
    "price_deviation": "Trades far from the reference market price: check for a pricing fault or abuse and ask "
    "the participant for its quote log.",
    "self_trade": "Possible wash trade (same beneficial owner on both sides): ask for the order records and refer "
    "to market-abuse review.",
    "reserve_coverage": "Custody holdings do not cover client liabilities: call the participant's compliance "
    "officer now and require a reconciliation and top-up plan.",
    "max_accounts": "The customer cap is exceeded: order the participant to stop onboarding until accounts are "
    "within the licensed number.",
    "periodic_report": "A periodic report is overdue: contact the participant's reporting officer and record the "
    "late filing.",
    "participant_limits": "A participant-level condition (capital or ownership) is no longer met: escalate to "
    "the licensing team for a formal review.",
}


# The monitor's own health: what operations does when the pipeline, not a participant, is at fault.
PIPELINE_RUNBOOKS: dict[str, str] = {
    "SandboxwatchWorkerDown": "Check the worker process and its logs; until it is back, breaches are not detected.",
    "SandboxwatchNoEvents": "Check the participant's ingest connector and the events topic; a silent feed hides "
    "breaches.",
    "SandboxwatchConsumerLag": "Add workers (up to the partition count) or look for a slow store.",
    "SandboxwatchDeadLettersRising": "Read the dead_letters table for the reasons and contact the feed's owner.",
    "SandboxwatchPartitionStalled": "Events wait on a partition the worker no longer moves: read the worker log "
    "(store retries, an agent error), check /ready on the worker and restart it if it does not recover; "
    "until then the partition's participants are unmonitored.",
    "SandboxwatchStoreUnwritable": "ClickHouse refuses or cannot be reached, and the worker is holding its batch "
    "and retrying (nothing is committed, nothing lost): bring ClickHouse back; the worker resumes by itself.",
    "SandboxwatchWorkerNotReady": "The worker is up but not monitoring (agent stopped, store unwritable or "
    "rebalancing): read /ready on the worker for the reason and its log; restart it if the agent failed.",
    "SandboxwatchBrokerUnreachable": "The worker cannot read offsets from Kafka, so lag is unknown and no events "
    "arrive: check the brokers and the network; the worker reconnects by itself.",
}

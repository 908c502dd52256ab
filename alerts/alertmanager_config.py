"""Alertmanager routing for a 24/7 regulator desk, generated from the licences it monitors.

Breaches and critical findings page the regulator's desk; a participant's own warnings go to that
participant's receiver (so it can fix things before they become breaches); pipeline health goes to
operations. Every receiver posts to sandboxwatch's notification recorder, because Alertmanager keeps no
history and auditors must be able to ask who was alerted, when. Operators add e-mail or chat
integrations beside the recorder's webhook in each receiver.

The recorder accepts posts only with its bearer token; Alertmanager reads it from a file
(``RECORDER_TOKEN_FILE``, mounted from a secret in both containers) so the token is never in this
generated, committed config."""

from __future__ import annotations

from typing import Any

from sandboxwatch.rules_engine.licence import Licence

RECORDER = "http://sandboxwatch-recorder:9095/notify"
RECORDER_TOKEN_FILE = "/etc/sandboxwatch/recorder/token"


def participant_receiver(participant: str) -> str:
    return f"participant-{participant}"


def _receiver(name: str, recorder: str, token_file: str) -> dict[str, Any]:
    hook = {
        "url": f"{recorder}/{name}",
        "send_resolved": True,
        "http_config": {"authorization": {"type": "Bearer", "credentials_file": token_file}},
    }
    return {"name": name, "webhook_configs": [hook]}


def alertmanager_config(
    licences: list[Licence], recorder: str = RECORDER, token_file: str = RECORDER_TOKEN_FILE
) -> dict[str, Any]:
    participants = sorted({lic.header.participant for lic in licences})
    routes: list[dict[str, Any]] = [
        {
            "receiver": "operations",
            "matchers": ['team="operations"'],
            "group_by": ["alertname"],
            "repeat_interval": "1h",
        },
        {
            "receiver": "regulator-desk",
            "matchers": ['severity=~"breach|critical"'],
            "group_wait": "10s",
            "repeat_interval": "2h",
        },
    ]
    routes += [
        {"receiver": participant_receiver(p), "matchers": ['severity="warning"', f'participant="{p}"']}
        for p in participants
    ]
    receivers = [_receiver(name, recorder, token_file) for name in ("regulator-desk", "operations")]
    receivers += [_receiver(participant_receiver(p), recorder, token_file) for p in participants]
    receivers.append(_receiver("unrouted", recorder, token_file))
    return {
        "route": {
            "receiver": "unrouted",
            "group_by": ["alertname", "participant"],
            "group_wait": "30s",
            "group_interval": "5m",
            "repeat_interval": "4h",
            "routes": routes,
        },
        "inhibit_rules": [
            # While a worker is down its participants look silent: page once, for the cause.
            {
                "source_matchers": ['alertname="SandboxwatchWorkerDown"'],
                "target_matchers": ['alertname=~"SandboxwatchNoEvents|SandboxwatchConsumerLag"'],
            },
            # A limit already breached needs no "near the limit" warning as well.
            {
                "source_matchers": ['severity=~"breach|critical"'],
                "target_matchers": ['alertname=~".*NearLimit"'],
                "equal": ["participant", "rule"],
            },
        ],
        "receivers": receivers,
    }

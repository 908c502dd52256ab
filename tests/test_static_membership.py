"""The worker's static group membership (streams.static_membership): its default id, and an orderly stop that
still leaves the group. The kill -9 take-back itself runs against both real brokers in tests/integration."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from aiokafka.consumer.group_coordinator import GroupCoordinator
from aiokafka.protocol.group import LeaveGroupRequest

from sandboxwatch.streams.static_membership import default_worker_id, leave_group_on_stop_as_static_member
from sandboxwatch.streams.worker import parser, settings_from


def test_the_default_worker_id_is_the_host_and_the_metrics_port() -> None:
    assert default_worker_id(9470) == f"{socket.gethostname()}:9470"
    base = ["--kafka", "k:9092", "--clickhouse", "chdb:///tmp/x", "--licence", "l.yaml"]
    assert settings_from(parser().parse_args([*base, "--metrics-port", "9471"])).worker_id == (
        f"{socket.gethostname()}:9471"
    )
    assert settings_from(parser().parse_args([*base, "--worker-id", "worker-3"])).worker_id == "worker-3"


class _Coordinator:
    """The attributes aiokafka's _maybe_leave_group reads, and the requests it sends."""

    def __init__(self) -> None:
        self.group_id = "g"
        self.member_id = "m-1"
        self.generation = 4
        self._group_instance_id = "host:9464"
        self.sent: list[Any] = []

    async def _send_req(self, request: Any) -> None:
        self.sent.append(request)

    def reset_generation(self) -> None:
        self.generation = -1


def test_a_static_member_leaves_the_group_by_member_id_when_it_stops() -> None:
    leave_group_on_stop_as_static_member()
    leave_group_on_stop_as_static_member()  # idempotent: wrapped once
    coordinator = _Coordinator()
    asyncio.run(GroupCoordinator._maybe_leave_group(coordinator))
    [request] = coordinator.sent
    assert isinstance(request, LeaveGroupRequest)
    assert (request._group, request._member_id) == ("g", "m-1")
    assert coordinator._group_instance_id == "host:9464", "the instance id is kept"
    assert coordinator.generation == -1

"""The worker's group membership: its static id and its default, an orderly stop that still leaves the group
(streams.static_membership), and whether it is in the group (streams.group_membership). The kill -9 take-back
and a join that never completes run against both real brokers in tests/integration."""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka.consumer.group_coordinator import GroupCoordinator
from aiokafka.protocol.group import LeaveGroupRequest

from sandboxwatch.streams.static_membership import leave_group_on_stop_as_static_member
from sandboxwatch.streams.worker import parser, settings_from


def test_the_worker_id_is_an_option_and_membership_is_dynamic_without_it() -> None:
    base = ["--kafka", "k:9092", "--clickhouse", "chdb:///tmp/x", "--licence", "l.yaml"]
    assert settings_from(parser().parse_args(base)).worker_id is None
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


def test_group_membership_is_out_from_the_start_and_between_a_revocation_and_the_next_assignment() -> None:
    from sandboxwatch.streams.group_membership import GroupMembership

    now = [100.0]
    membership = GroupMembership(clock=lambda: now[0])
    assert not membership.is_joined
    now[0] = 130.0
    assert membership.reason() == (
        "not in the consumer group: its join has not completed for 30 s (no partitions assigned)"
    )
    membership.joined()
    assert membership.is_joined
    now[0] = 200.0
    membership.left()
    now[0] = 212.0
    assert not membership.is_joined
    assert "for 12 s" in membership.reason()
    membership.left()  # a second revocation while joining keeps the first one's time
    now[0] = 215.0
    assert "for 15 s" in membership.reason()
    membership.joined()
    assert membership.is_joined

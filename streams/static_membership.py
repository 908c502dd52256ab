"""``--worker-id``: a worker may join the consumer group under a stable instance id (static membership, KIP-345).

Why: a worker killed with kill -9 never leaves the group. Apache Kafka and tansu drop it once its session
times out (6 s) and rebalance, but noida-db 0.2.3 never expires a session: observed with two plain aiokafka
consumers, the survivor heartbeats at the same generation for 70 s after its peer's kill -9 and is never
given the dead member's partitions, and a restarted worker's JoinGroup completes at generation 2 naming the
dead member as leader, so its SyncGroup waits for an assignment that never comes and is refused
(REBALANCE_IN_PROGRESS) every 6 s, forever. A member that rejoins under the dead one's instance id replaces
it at once (seen on noida and tansu; KIP-345 in Apache Kafka since 2.3): the restarted worker takes its own
partitions back without waiting for any session to expire.

Opt-in, not the default: tansu forgets a static member's id when a second one joins at the same time (its
heartbeat is refused with UNKNOWN_MEMBER_ID and the group churns for a few rebalances), and both scale-out
runs with two static workers on it failed (kill -9: a changelog ConsistencyError after that churn). The id must be
unique among the live workers of a group and the same for a worker across restarts (deploy/OPERATIONS.md,
"Worker ids").

A static member does not leave the group when it stops (aiokafka skips LeaveGroup for it, so that a rolling
restart does not rebalance). Here an orderly stop leaves anyway, by member id, so the worker taking its
partitions over starts at once rather than a session timeout later (on noida, never)."""

from __future__ import annotations

from typing import Any

from aiokafka.consumer.group_coordinator import GroupCoordinator

_MARK = "_sandboxwatch_static_member_leaves"


def leave_group_on_stop_as_static_member() -> None:
    """Idempotent; applies to every aiokafka consumer of the process (the worker's faust consumer)."""
    original = GroupCoordinator._maybe_leave_group
    if getattr(original, _MARK, False):
        return

    async def _maybe_leave_group(self: Any) -> Any:
        instance_id = self._group_instance_id
        # aiokafka leaves (by member id, LeaveGroup v0/v1) only when no instance id is set; a coordinator
        # removes a member that leaves by member id whether or not it has an instance id (seen on tansu and
        # noida: the survivor is given the partitions at once).
        self._group_instance_id = None
        try:
            return await original(self)
        finally:
            self._group_instance_id = instance_id

    setattr(_maybe_leave_group, _MARK, True)
    GroupCoordinator._maybe_leave_group = _maybe_leave_group

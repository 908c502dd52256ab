"""A worker whose offset commit lands while its group rebalances rejoins under the member id it had.

When another worker leaves the group (an orderly stop), a commit made before this worker's next heartbeat
notices the rebalance is refused. noida-db 0.2.3 refuses it with ILLEGAL_GENERATION (Apache Kafka says
REBALANCE_IN_PROGRESS), and aiokafka answers that by forgetting its member id and joining as a new member;
noida never evicts the old member (it does not expire sessions), so the group waits for it forever and
the remaining worker never gets the partitions it should take over. Rejoining under the same member id is
what the refusal calls for on either broker: one that no longer knows the id answers the JoinGroup with
UNKNOWN_MEMBER_ID, and aiokafka resets it then."""

from __future__ import annotations

from typing import Any

from aiokafka import errors
from aiokafka.consumer.group_coordinator import GroupCoordinator

_MARK = "_sandboxwatch_keeps_member_id"


def keep_member_id_on_refused_commit() -> None:
    """Idempotent; applies to every aiokafka consumer of the process (the worker's faust consumer)."""
    original = GroupCoordinator._do_commit_offsets
    if getattr(original, _MARK, False):
        return

    async def _do_commit_offsets(self: Any, assignment: Any, offsets: Any) -> Any:
        member_id = self.member_id
        try:
            return await original(self, assignment, offsets)
        except errors.IllegalGenerationError:
            # aiokafka has reset the generation and asked to rejoin; only the member id is given back.
            self.member_id = member_id
            raise

    setattr(_do_commit_offsets, _MARK, True)
    GroupCoordinator._do_commit_offsets = _do_commit_offsets

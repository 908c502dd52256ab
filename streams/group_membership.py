"""Whether the worker is in its consumer group: the last rebalance it took part in gave it an assignment.

faust starts the agent before the group join completes, so "the agent runs" alone reads ready while a worker
waits for partitions that never come. That is what noida-db 0.2.3 does to a worker that rejoins after a kill
-9 under a new member id: the JoinGroup completes at a generation whose leader is the dead member, and the
SyncGroup is refused (REBALANCE_IN_PROGRESS) every session timeout, forever. Any broker that cannot finish a
join (a coordinator stuck loading, a group that never stabilises) looks the same from here. Between a
revocation and the next assignment the worker is not in the group: not ready, and
``sandboxwatch_group_joined`` reads 0, so a join that never completes pages (SandboxwatchGroupJoinStuck)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


class GroupMembership:
    """Connected to the app's rebalance signals; read by the readiness check each second."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._joined = False
        self._since = clock()  # joining since the start

    def connect(self, app: Any) -> None:
        app.on_partitions_revoked.connect(self._revoked)
        app.on_partitions_assigned.connect(self._assigned)

    def _revoked(self, sender: Any, /, *args: Any, **kwargs: Any) -> None:
        self.left()

    def _assigned(self, sender: Any, /, *args: Any, **kwargs: Any) -> None:
        self.joined()

    def left(self) -> None:
        if self._joined:
            self._joined = False
            self._since = self._clock()

    def joined(self) -> None:
        self._joined = True

    @property
    def is_joined(self) -> bool:
        return self._joined

    def reason(self) -> str:
        """Why the worker is not ready while it is out of the group."""
        waited = self._clock() - self._since
        return f"not in the consumer group: its join has not completed for {waited:.0f} s (no partitions assigned)"

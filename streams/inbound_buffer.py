"""A byte bound on the messages faust holds for the monitor between fetching and taking them.

faust bounds each stream's buffer by a count of messages (``stream_buffer_maxsize``). A message may now be
a batch of up to 512 KiB (docs/events.md, "Stream messages"), so 20,000 buffered messages could be 10 GB:
a burst of large batches would end the worker by running out of memory, the one way of stopping that no
finding reports. The queue here is the one faust builds for every channel (``App.FlowControlQueue``),
counting the bytes of the messages it holds as well: it is full at the count or at ``max_bytes``, whichever
comes first, and tells the consumer to pause fetching the partition at the same fraction of either as
faust does for the count. When full, faust's conductor waits for the monitor to take messages, and the
fetcher stops reading the partition, so the bound holds however large the messages are (plus one message:
an empty buffer always takes the next one, however large, or a message above the bound would never pass).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from mode.utils.queues import FlowControlEvent, ThrowableQueue

log = logging.getLogger(__name__)


def message_bytes(item: Any) -> int:
    """The size of a buffered faust event's Kafka message (key and value as they arrived), 0 if none."""
    message = getattr(item, "message", None)
    if message is None:
        return 0
    value, key = message.value, message.key
    return (len(value) if isinstance(value, bytes | bytearray) else 0) + (
        len(key) if isinstance(key, bytes | bytearray) else 0
    )


def generation_of(item: Any) -> int | None:
    """The consumer generation a buffered faust event's message was fetched in, None if none."""
    generation = getattr(getattr(item, "message", None), "generation_id", None)
    return generation if isinstance(generation, int) else None


class ByteBoundedQueue(ThrowableQueue):  # type: ignore[type-arg]
    """faust's stream buffer (a ``ThrowableQueue``), bounded in bytes as well as in messages."""

    def __init__(
        self,
        maxsize: int = 0,
        *,
        max_bytes: int,
        flow_control: FlowControlEvent,
        clear_on_resume: bool = False,
        generation: Callable[[], int] | None = None,
    ) -> None:
        if max_bytes <= 0:
            raise ValueError(f"a buffer bound must be positive, not {max_bytes} bytes")
        self.max_bytes = max_bytes
        self.bytes = 0
        self.generation = generation
        super().__init__(maxsize=maxsize, flow_control=flow_control, clear_on_resume=clear_on_resume)

    # asyncio.Queue's hooks: every way in or out (put, put_nowait, faust's force_put_nowait, get) goes here.
    def _put(self, item: Any) -> None:
        self.bytes += message_bytes(item)
        super()._put(item)

    def _get(self) -> Any:
        item = super()._get()
        self.bytes -= message_bytes(item)
        return item

    def clear(self) -> None:
        """faust clears the buffers twice around a rebalance: when partitions are revoked (flow suspended:
        everything goes, the new owner re-reads it from the committed offset) and when flow resumes after
        the new assignment (flow active). faust 0.15 (``Recovery.on_recovery_completed``) resumes the
        partitions, awaits its seek to the committed offsets with the fetcher running, and only then clears:
        messages of the new generation fetched meanwhile were dropped here although the consumer's position
        had moved past them, so the stream went on after a hole (on noida-db, 1 run in 3 of the scale-out
        test: events never monitored, or a taker that found its snapshot "behind" the first offset it saw).
        Those messages are kept; a copy fetched again after the seek is a re-delivery the engine's event-id
        memory skips."""
        generation = self.generation() if self.generation is not None else None
        queued: list[Any] = list(self._queue)  # type: ignore[attr-defined]
        active = self._flow_control.is_active()
        keep = [item for item in queued if active and generation is not None and generation_of(item) == generation]
        super().clear()
        self.bytes = 0
        for item in keep:
            self._put(item)
        if keep:
            log.info("flow resumed: kept %d messages of generation %d fetched before the clear", len(keep), generation)

    def full(self) -> bool:
        return self.bytes >= self.max_bytes or bool(super().full())

    def in_pressure_high_state(self, callback: Any) -> bool:
        pending = self._pending_pressure_drop_callbacks
        if callback not in pending and self.bytes >= self.max_bytes / self.pressure_high_ratio:
            pending.add(callback)
            self.on_pressure_high()
            return True
        return bool(super().in_pressure_high_state(callback))

    def maybe_endorse_pressure_drop(self) -> None:
        # Fetching resumes only once the bytes have drained as far as faust lets the count drain.
        if self.qsize() and self.bytes > self.max_bytes * self.pressure_drop_ratio:
            return
        super().maybe_endorse_pressure_drop()


def install(app: Any, max_bytes: int) -> None:
    """Make every stream buffer ``app`` builds from now on byte-bounded (call before the app starts)."""

    def flow_control_queue(maxsize: int | None = None, *, clear_on_resume: bool = False) -> ByteBoundedQueue:
        return ByteBoundedQueue(
            maxsize or 0,
            max_bytes=max_bytes,
            flow_control=app.flow_control,
            clear_on_resume=clear_on_resume,
            generation=lambda: int(app.consumer_generation_id),
        )

    app.FlowControlQueue = flow_control_queue


class TakeBudget:
    """The same bound for the batch being taken (faust's ``take_events``): it holds up to ``batch_size``
    messages, counted, or what arrives within ``batch_wait``. As a processor of the agent's stream, ahead of
    the take's own, this lets a message into the take only while the take holds less than ``max_bytes``;
    the take is then handed over at its ``within`` timeout (with 512 KiB messages the count is never what
    ends it anyway), and ``taken`` lets the next one fill. The first message of a take always passes."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._taken: asyncio.Event | None = None

    async def __call__(self, value: Any) -> Any:
        while self.bytes >= self.max_bytes:
            if self._taken is None:
                self._taken = asyncio.Event()
            self._taken.clear()
            await self._taken.wait()
        self.bytes += len(value) if isinstance(value, bytes | bytearray) else 0
        return value

    def taken(self) -> None:
        """The agent has the take: the next one starts empty."""
        self.bytes = 0
        if self._taken is not None:
            self._taken.set()

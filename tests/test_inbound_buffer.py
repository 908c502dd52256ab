"""The stream buffer is bounded in bytes as well as in messages (streams/inbound_buffer.py): a burst of
512 KiB batch messages cannot fill a worker's memory, and the bound is the one the worker was given."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace

import pytest
from mode.utils.queues import FlowControlEvent

from sandboxwatch.alerts.metrics import Metrics
from sandboxwatch.rules_engine.licence import load_licence
from sandboxwatch.store.clickhouse_store import Store
from sandboxwatch.streams.app import StreamWorker
from sandboxwatch.streams.inbound_buffer import ByteBoundedQueue, TakeBudget
from sandboxwatch.streams.monitor import Monitor
from sandboxwatch.streams.worker import parser, settings_from
from sandboxwatch.streams.worker_settings import DEFAULT_BUFFER_BYTES, WorkerSettings
from tests.helpers import DA_NANG


def event(size: int) -> SimpleNamespace:
    """What faust buffers: an event whose message carries the raw key and value."""
    return SimpleNamespace(message=SimpleNamespace(key=b"venue", value=b"x" * (size - 5)))


def test_the_buffer_is_full_at_its_bytes_long_before_its_count_and_pauses_fetching_on_the_way() -> None:
    async def scenario() -> None:
        queue = ByteBoundedQueue(20_000, max_bytes=5_000, flow_control=FlowControlEvent(initially_suspended=False))
        paused: list[str] = []
        resumed: list[str] = []

        def put() -> bool:
            item = event(1_000)
            return queue.put_nowait_enhanced(
                item, on_pressure_high=lambda: paused.append("p0"), on_pressure_drop=lambda: resumed.append("p0")
            )

        assert [put() for _ in range(4)] == [False, False, False, False]
        assert (queue.bytes, queue.full()) == (4_000, False)
        assert put() is True  # 4,000 bytes held >= 5,000 / 1.25: the partition's fetching pauses
        assert paused == ["p0"]
        assert (queue.qsize(), queue.bytes, queue.full()) == (5, 5_000, True)

        # Full: a further message waits for the monitor to take one, as faust's conductor does.
        waiting = asyncio.ensure_future(queue.put(event(1_000)))
        await asyncio.sleep(0.05)
        assert not waiting.done() and queue.qsize() == 5
        await queue.get()
        await asyncio.wait_for(waiting, 1)
        assert (queue.qsize(), queue.bytes) == (5, 5_000)

        # Fetching resumes once the bytes drain to 40% (2,000), not at faust's 40% of 20,000 messages.
        for held in (4_000, 3_000):
            await queue.get()
            assert queue.bytes == held and resumed == []
        await queue.get()
        await queue.get()  # the drop is endorsed on the way out, with 2,000 bytes left
        assert queue.bytes == 1_000 and resumed == ["p0"]
        queue.clear()
        assert (queue.qsize(), queue.bytes) == (0, 0)

    asyncio.run(scenario())


def test_one_message_above_the_bound_still_passes_alone() -> None:
    async def scenario() -> None:
        queue = ByteBoundedQueue(100, max_bytes=1_000, flow_control=FlowControlEvent(initially_suspended=False))
        queue.put_nowait(event(600_000))
        assert queue.full() and queue.bytes == 600_000
        assert (await queue.get()).message.key == b"venue"
        assert not queue.full() and queue.bytes == 0

    asyncio.run(scenario())


def test_a_bound_must_be_positive() -> None:
    with pytest.raises(ValueError, match="must be positive"):
        ByteBoundedQueue(10, max_bytes=0, flow_control=FlowControlEvent(initially_suspended=False))


def test_the_worker_s_stream_buffer_has_the_configured_byte_bound(store: Store, tmp_path: Path) -> None:
    base = dict(kafka="127.0.0.1:9", store_url="chdb://unused", licences=(DA_NANG,), data_dir=tmp_path)

    async def buffer_of(settings: WorkerSettings) -> tuple[int, int]:
        worker = StreamWorker(settings, Monitor([load_licence(DA_NANG)], store, Metrics()))
        try:
            queue = worker.events_topic.clone(is_iterator=True).queue
            assert isinstance(queue, ByteBoundedQueue)
            return queue.max_bytes, queue.maxsize
        finally:
            worker.close()

    small = WorkerSettings(**base, batch_size=100, buffer_bytes=3 * 2**20)  # type: ignore[arg-type]
    assert asyncio.run(buffer_of(small)) == (3 * 2**20, 400)
    assert asyncio.run(buffer_of(WorkerSettings(**base)))[0] == DEFAULT_BUFFER_BYTES == 64 * 2**20  # type: ignore[arg-type]


def test_run_takes_the_buffer_bound_from_the_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    common = ["--kafka", "k:9092", "--clickhouse", "chdb://x", "--licence", str(DA_NANG)]
    assert settings_from(parser().parse_args([*common, "--buffer-mib", "16"])).buffer_bytes == 16 * 2**20
    assert settings_from(parser().parse_args(common)).buffer_bytes == DEFAULT_BUFFER_BYTES
    with pytest.raises(SystemExit):
        parser().parse_args([*common, "--buffer-mib", "0"])
    assert "must be from 1 to 1048576, not 0" in capsys.readouterr().err


def test_the_take_lets_messages_in_only_below_its_bytes_and_starts_empty_once_taken() -> None:
    async def scenario() -> None:
        budget = TakeBudget(1_000)
        assert await budget(b"x" * 600) == b"x" * 600
        await budget(b"x" * 600)  # 600 held < 1,000: it passes, and the take now holds 1,200
        waiting = asyncio.ensure_future(budget(b"y" * 10))
        await asyncio.sleep(0.05)
        assert not waiting.done() and budget.bytes == 1_200
        budget.taken()
        assert await asyncio.wait_for(waiting, 1) == b"y" * 10
        assert budget.bytes == 10
        big = TakeBudget(1_000)
        await asyncio.wait_for(big(b"z" * 600_000), 1)  # the first of a take always passes

    asyncio.run(scenario())


def test_a_clear_on_resume_keeps_what_the_new_generation_fetched_and_a_clear_on_revoke_drops_all() -> None:
    """faust clears the buffers when flow resumes after a rebalance, after it sought the partitions to their
    committed offsets while its fetcher already ran: dropping what the new generation fetched meanwhile left
    a hole in the stream (the noida hand-over bug, #12). Stale messages of the old generation still go."""

    def fetched(offset: int, generation: int) -> SimpleNamespace:
        return SimpleNamespace(
            message=SimpleNamespace(key=b"venue", value=b"x" * 95, offset=offset, generation_id=generation)
        )

    async def scenario() -> None:
        flow = FlowControlEvent(initially_suspended=False)
        queue = ByteBoundedQueue(100, max_bytes=10_000, flow_control=flow, clear_on_resume=True, generation=lambda: 3)
        for offset, generation in [(7, 2), (8, 2), (26, 3), (27, 3)]:
            queue.force_put_nowait(fetched(offset, generation))
        flow.resume()  # what faust's recovery does once the new assignment is sought: clears managed queues
        assert [queue.get_nowait().message.offset for _ in range(queue.qsize())] == [26, 27]
        queue.force_put_nowait(fetched(28, 3))
        queue.force_put_nowait(fetched(29, 3))
        assert queue.bytes == 200
        flow.suspend()  # partitions revoked: everything buffered is re-read by whoever owns them next
        flow.clear()
        assert queue.qsize() == 0 and queue.bytes == 0

    asyncio.run(scenario())

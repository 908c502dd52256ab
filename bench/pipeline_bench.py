"""Live pipeline throughput and latency on this machine, in one run.

1. Raw consume rate: an aiokafka consumer reading the simulated day from a topic on a real broker, published
   as every producer of ours sends it (batch messages of one participant's events, docs/events.md), and
   decoding each event line with json.loads.
2. End-to-end rate: the stream worker (faust + rules engine + ClickHouse store + metrics) on the same
   messages, from its first batch until every event is stored; printed with its ratio to (1).
3. Event -> metric latency: events produced one at a time at a steady rate while the worker runs; the
   time from send until the batch holding the event has updated the Prometheus metrics; p50 and p99.
4. The two ceilings of (2), each with its ratio to (1): the same faust app delivering the same messages
   to an agent that does nothing with them, and the monitor alone (parse, rules, store, metrics) fed the
   same lines in the worker's batch size without Kafka. End to end cannot beat the slower of the two.

Targets: ratio >= 0.5 and p99 < 1 s. The store is chdb (embedded) unless --clickhouse names a server.

    python bench/pipeline_bench.py [--events 60000] [--clickhouse clickhouse://127.0.0.1:9000/bench]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sandboxwatch.alerts.metrics import Metrics  # noqa: E402
from sandboxwatch.embedded import EMBEDDED_FETCH_WAIT  # noqa: E402
from sandboxwatch.gc_policy import tune_for_throughput  # noqa: E402
from sandboxwatch.rules_engine.licence import load_licence  # noqa: E402
from sandboxwatch.simulator import SimulationConfig, build_scenario, scenario_lines  # noqa: E402
from sandboxwatch.store.clickhouse_store import Store  # noqa: E402
from sandboxwatch.streams.app import StreamWorker, event_chunks  # noqa: E402
from sandboxwatch.streams.inbound import InboundMessage  # noqa: E402
from sandboxwatch.streams.local_broker import TansuBroker  # noqa: E402
from sandboxwatch.streams.monitor import BatchOutcome, Monitor  # noqa: E402
from sandboxwatch.streams.publish import line_messages, polls, publish_lines  # noqa: E402
from sandboxwatch.streams.topics import Topics, ensure_topics  # noqa: E402
from sandboxwatch.streams.worker import build  # noqa: E402
from sandboxwatch.streams.worker_settings import WorkerSettings  # noqa: E402

LICENCE = ROOT / "config" / "licences" / "da-nang-pilot.yaml"


async def raw_consume_rate(bootstrap: str, topic: str, total: int) -> float:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or set()]
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or set()]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        seen, start = 0, None
        while seen < total:
            batch = await consumer.getmany(timeout_ms=1000, max_records=5000)
            if start is None and batch:
                start = time.perf_counter()
            for records in batch.values():
                for record in records:
                    for line in record.value.split(b"\n"):
                        json.loads(line)  # what any consumer must do at least
                        seen += 1
        assert start is not None
        return seen / (time.perf_counter() - start)
    finally:
        await consumer.stop()


class DeliveryOnly(StreamWorker):
    """The worker's own faust app and agent, with the monitor's work taken out: faust's delivery alone."""

    async def _handle(self, messages: list[InboundMessage]) -> None:
        self.processed += sum((m.value or b"").count(b"\n") + 1 for m in messages)


async def faust_delivery_rate(settings: WorkerSettings, store_url: str, total: int) -> float:
    worker = DeliveryOnly(settings, Monitor([load_licence(LICENCE)], Store.open(store_url), Metrics()))
    await worker.app.start()
    try:
        while worker.processed == 0:
            await asyncio.sleep(0.005)
        start, before = time.perf_counter(), worker.processed
        while worker.processed < total:
            await asyncio.sleep(0.005)
        return (total - before) / (time.perf_counter() - start)
    finally:
        await worker.app.stop()
        worker.close()
        worker.monitor.store.close()


def monitor_rate(lines: list[str], store_url: str, batch_size: int) -> float:
    monitor = Monitor([load_licence(LICENCE)], Store.open(store_url), Metrics())
    messages = [
        InboundMessage("bench", 0, i, key, value)
        for i, (key, value) in enumerate(m for poll in polls(lines) for m in line_messages(poll))
    ]
    start = time.perf_counter()
    for chunk in event_chunks(messages, batch_size):
        monitor.process_batch(chunk)
    elapsed = time.perf_counter() - start
    monitor.store.close()
    return len(lines) / elapsed


def probe_lines(lines: list[str], count: int) -> list[str]:
    """Fresh copies of a clean trade, with new ids and later event times, so each is new to the engine."""
    trade = next(json.loads(line) for line in lines if '"type":"trade"' in line and '"bad-' not in line)
    last = max(json.loads(line)["ts"] for line in lines[-50:])
    from datetime import datetime, timedelta

    base = datetime.fromisoformat(last)
    out = []
    for i in range(count):
        probe = dict(trade, event_id=f"probe-{i}", ts=(base + timedelta(seconds=i + 1)).isoformat())
        out.append(json.dumps(probe))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=60_000)
    parser.add_argument("--accounts", type=int, default=3_000)
    parser.add_argument("--clickhouse", help="clickhouse://HOST:PORT/DB (default: embedded chdb)")
    parser.add_argument("--probes", type=int, default=400)
    parser.add_argument("--probe-rate", type=float, default=100.0, help="probe events per second")
    args = parser.parse_args()
    tune_for_throughput()  # as `sandboxwatch run` and `up` do

    licence = load_licence(LICENCE)
    scenario = build_scenario(licence, SimulationConfig(accounts=args.accounts, seed=7, target_events=args.events))
    lines = [line.rstrip("\n") for line in scenario_lines(scenario)]
    del scenario
    with tempfile.TemporaryDirectory() as folder, TansuBroker(Path(folder) / "tansu") as broker:
        raw = Topics("raw.events", "raw.findings", "raw.deadletter", 4, "raw-monitor")
        live = Topics("live.events", "live.findings", "live.deadletter", 4, "live-monitor")
        bare = Topics("bare.events", "bare.findings", "bare.deadletter", 4, "bare-monitor")
        for topics in (raw, live, bare):
            ensure_topics(broker.address, topics)
            publish_lines(broker.address, topics.events, lines)
        raw_rate = asyncio.run(raw_consume_rate(broker.address, raw.events, len(lines)))

        store_url = args.clickhouse or f"chdb://{Path(folder) / 'chdb'}"
        bare_settings = WorkerSettings(
            kafka=broker.address,
            store_url=store_url,
            licences=(LICENCE,),
            topics=bare,
            data_dir=Path(folder) / "faust-bare",
            fetch_max_wait=EMBEDDED_FETCH_WAIT,
        )
        delivery = asyncio.run(faust_delivery_rate(bare_settings, store_url, len(lines)))
        alone_url = (args.clickhouse + "_alone") if args.clickhouse else f"chdb://{Path(folder) / 'chdb-alone'}"
        monitor_alone = monitor_rate(lines, alone_url, bare_settings.batch_size)
        settings = dataclasses.replace(bare_settings, topics=live, data_dir=Path(folder) / "faust")
        worker = build(settings, Metrics())
        marks: dict[str, float] = {}
        first_batch: list[float] = []

        def on_batch(outcome: BatchOutcome) -> None:
            now = time.perf_counter()
            if not first_batch:
                first_batch.extend([now, float(worker.processed)])
            for record in outcome.accepted:
                if record.event.event_id.startswith("probe-"):
                    marks[record.event.event_id] = now

        worker.on_batch = on_batch
        probes = probe_lines(lines, args.probes)
        sent: dict[str, float] = {}

        def send_probes() -> None:
            from kafka import KafkaProducer

            producer = KafkaProducer(bootstrap_servers=broker.address, linger_ms=0, acks=1)
            for line in probes:
                event_id = json.loads(line)["event_id"]
                sent[event_id] = time.perf_counter()
                producer.send(live.events, key=json.loads(line)["participant"].encode(), value=line.encode())
                producer.flush()
                time.sleep(1 / args.probe_rate)
            producer.close()

        async def run() -> float:
            await worker.app.start()
            try:
                while worker.processed < len(lines):
                    await asyncio.sleep(0.02)
                end = time.perf_counter()
                thread = threading.Thread(target=send_probes)
                thread.start()
                while worker.processed < len(lines) + len(probes):
                    await asyncio.sleep(0.02)
                thread.join()
                start, before = first_batch
                return (len(lines) - before) / (end - start)
            finally:
                await worker.app.stop()
                worker.close()

        e2e_rate = asyncio.run(run())
        stored = worker.monitor.store.count("findings")
        worker.monitor.store.close()

    latencies = sorted(marks[k] - sent[k] for k in marks if k in sent)
    p50 = statistics.median(latencies)
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    ratio = e2e_rate / raw_rate
    print(
        f"events: {len(lines):,}  store: {'server' if args.clickhouse else 'chdb (embedded)'}  "
        f"findings stored: {stored}"
    )
    print(f"  raw consume (aiokafka + json.loads)      {raw_rate:>10,.0f} events/s")
    print(f"  end to end (events -> findings stored)   {e2e_rate:>10,.0f} events/s   ratio: {ratio:.3f}")
    print(
        f"  event -> metric latency over {len(latencies)} probes at {args.probe_rate:.0f}/s: "
        f"p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms"
    )
    print("  ceilings of end to end, each measured alone in this run:")
    for label, rate in (
        ("faust delivery to an agent that does nothing", delivery),
        ("monitor without Kafka (parse, rules, store)", monitor_alone),
    ):
        print(f"    {label:<45} {rate:>10,.0f} events/s   ratio: {rate / raw_rate:.3f}")
    print(
        f"  targets: ratio >= 0.5: {'met' if ratio >= 0.5 else 'NOT met'}; p99 < 1 s: {'met' if p99 < 1 else 'NOT met'}"
    )


if __name__ == "__main__":
    main()

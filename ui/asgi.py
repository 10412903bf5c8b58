"""ASGI helpers shared by the middlewares that read a request body before the app does."""

from __future__ import annotations

from typing import Any


def replaying(body: bytes | bytearray, receive: Any) -> Any:
    """A `receive` that hands the app `body` (already read from the connection) once, then the connection's own
    messages (a disconnect, say)."""
    replayed = False

    async def replay() -> dict[str, Any]:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}
        return await receive()

    return replay

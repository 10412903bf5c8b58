"""Request limits and the site's identity in front of the whole app (ASGI middlewares): uploads only on the admin
page, a cap on the size of `/v1` and `/api` request bodies, and a public root URL no request header can change."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

LIMITED_PREFIXES = ("/v1/", "/api/")
"""Paths whose request bodies are capped at `limits.max_body_bytes`."""


def is_upload(path: str) -> bool:
    """Whether `path` is one of Gradio's upload routes (under any mount)."""
    return path.rstrip("/").endswith("/gradio_api/upload")


class LimitsMiddleware:
    """Refuses Gradio uploads outside `/admin` (403) and `/v1`, `/api` bodies over `max_body_bytes` (413)."""

    def __init__(self, app: Callable[..., Awaitable[None]], max_body_bytes: int):
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        if is_upload(path) and not path.startswith("/admin/"):
            await _json(send, 403, "uploads are accepted only on the admin page (/admin), by a signed-in admin")
            return
        if not path.startswith(LIMITED_PREFIXES):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", []))
        try:
            declared = int(headers.get(b"content-length", b"0"))
        except ValueError:
            declared = 0
        if declared > self.max_body_bytes:
            await _json(send, 413, self._too_big())
            return
        body = bytearray()
        more = True
        while more:  # read the (small) body here, so a missing or false Content-Length cannot get a big one through
            message = await receive()
            if message["type"] != "http.request":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_body_bytes:
                await _json(send, 413, self._too_big())
                return
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def _too_big(self) -> str:
        return (f"the request body is larger than {self.max_body_bytes} bytes (limits.max_body_bytes); send less, "
                "e.g. only the conversation's new message with its conversation_id")  # fmt: skip


async def _json(send: Any, status: int, message: str) -> None:
    body = json.dumps({"error": {"message": message, "type": "invalid_request_error",
                                 "code": "too_large" if status == 413 else "forbidden"}}).encode()  # fmt: skip
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def origin_of(url: str) -> str:
    """`scheme://host[:port]` of `url`, lower-cased (`https://Shop.Example/x` -> `https://shop.example`)."""
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    port = f":{parts.port}" if parts.port and parts.port != default else ""
    return f"{parts.scheme}://{parts.hostname or ''}{port}".lower()


class SiteMiddleware:
    """The app's public identity. Gradio builds each page's root URL (which the page's script then calls) from
    `X-Forwarded-Host` or `X-Gradio-Server` when a request has them: both are dropped, and with `[server]
    root_url` the root is fixed to it."""

    def __init__(self, app: Callable[..., Awaitable[None]], root_url: str | None):
        self.app = app
        self.root = [(b"x-gradio-server", origin_of(root_url).encode())] if root_url else []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket"):
            kept = [(k, v) for k, v in scope.get("headers", []) if k.lower() not in _ROOT_HEADERS]
            scope = {**scope, "headers": kept + self.root}
        await self.app(scope, receive, send)


_ROOT_HEADERS = (b"x-forwarded-host", b"x-gradio-server")

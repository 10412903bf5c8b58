"""Request limits and the site's identity in front of the whole app (ASGI middlewares): uploads only on the admin
page, a cap on the size of `/v1` and `/api` request bodies, and a public root URL no request header can change."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

from ui.asgi import replaying
from ui.auth import required_roles

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
        await self.app(scope, replaying(body, receive), send)

    def _too_big(self) -> str:
        return (f"the request body is larger than {self.max_body_bytes} bytes (limits.max_body_bytes); send less, "
                "e.g. only the conversation's new message with its conversation_id")  # fmt: skip


async def _json(send: Any, status: int, message: str) -> None:
    body = json.dumps({"error": {"message": message, "type": "invalid_request_error",
                                 "code": {413: "too_large"}.get(status, "forbidden")}}).encode()  # fmt: skip
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def origin_of(url: str) -> str:
    """`scheme://host[:port]` of `url`, lower-cased, default port left out (`https://Shop.Example:443/x` ->
    `https://shop.example`); `null` for what has none (a malformed URL, the `null` origin of sandboxed pages)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return "null"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "null"
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    shown = f":{port}" if port and port != {"http": 80, "https": 443}[parts.scheme] else ""
    return f"{parts.scheme}://{host}{shown}".lower()


class SiteMiddleware:
    """The app's public identity, in front of everything (HTTP and websockets).

    - Root: Gradio builds each page's root URL (which the page's script then calls) from `X-Forwarded-Host` or
      `X-Gradio-Server` when a request has them: both are dropped, and with `root_url` the root is fixed to it.
    - Cross-site requests: a browser request from another origin that changes state (any method but GET, HEAD and
      OPTIONS; any websocket) is refused with 403: on `/login`, `/logout`, `/agent` and `/admin` always, elsewhere
      unless its origin is in `allowed_origins`. The origin is the `Origin` header, else the `Referer`'s; requests
      with neither (not from a browser page) pass. Our own origin is `root_url`'s, else the request's `Host`.
    - Responses: `Content-Security-Policy: frame-ancestors` (the agent and admin pages and the login form: 'self'
      only; the customer chat: 'self' and `allowed_origins`), `X-Frame-Options` where no other site may frame,
      `X-Content-Type-Options: nosniff`, `Referrer-Policy: same-origin`; CORS headers only for allowed origins on
      public paths (Gradio echoed any loopback `Origin`, with credentials).
    """

    def __init__(self, app: Callable[..., Awaitable[None]], root_url: str | None, allowed_origins: Sequence[str] = ()):
        self.app = app
        self.own = origin_of(root_url) if root_url else None
        self.root = [(b"x-gradio-server", self.own.encode())] if self.own else []
        self.allowed = frozenset(origin_of(o) for o in allowed_origins)
        framers = " ".join(["'self'", *sorted(self.allowed)])
        common = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"same-origin")]
        self.private_headers = [*common, (b"content-security-policy", b"frame-ancestors 'self'"),
                                (b"x-frame-options", b"SAMEORIGIN")]  # fmt: skip
        self.public_headers = [*common, (b"content-security-policy", f"frame-ancestors {framers}".encode())]
        if not self.allowed:
            self.public_headers.append((b"x-frame-options", b"SAMEORIGIN"))

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        kept = [(k, v) for k, v in scope.get("headers", []) if k.lower() not in _ROOT_HEADERS]
        scope = {**scope, "headers": kept + self.root}
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in kept}
        path = scope.get("path", "")
        private = path in ACCOUNT_PATHS or required_roles(path) is not None
        origin = headers.get("origin") or (origin_of(headers["referer"]) if headers.get("referer") else None)
        foreign = origin is not None and not self._ours(origin, headers.get("host", ""))
        allowed = foreign and not private and origin_of(origin) in self.allowed
        changes = scope["type"] == "websocket" or scope.get("method") not in SAFE_METHODS
        if foreign and changes and not allowed:
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 4403})
                return
            await _json(send, 403, f"cross-site request from {origin} refused: only this site's own pages may do "
                                   "this (a site embedding the chat goes in [server] allowed_origins)")  # fmt: skip
            return
        extra = self.private_headers if private else self.public_headers
        strip_cors = foreign and not allowed

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                names = {k for k, _ in extra}
                out = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                if strip_cors:
                    out = [(k, v) for k, v in out if not k.lower().startswith(b"access-control-allow-")]
                message = {**message, "headers": out + extra}
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _ours(self, origin: str, host: str) -> bool:
        """Whether `origin` is this site: `root_url`'s origin, else the host the request was sent to (the scheme is
        not compared: a TLS proxy in front talks plain HTTP to us)."""
        origin = origin_of(origin)
        if self.own is not None or origin == "null":
            return origin == self.own
        return origin.partition("://")[2] == origin_of(f"http://{host}").partition("://")[2]


SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
ACCOUNT_PATHS = ("/login", "/logout")
"""Public paths that act on a session: cross-site requests that change state are refused there too."""
_ROOT_HEADERS = (b"x-forwarded-host", b"x-gradio-server")

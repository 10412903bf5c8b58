"""Clean 4xx answers to malformed requests, instead of a 500 with a traceback or a reset connection.

- A body that fails validation (a wrong type, `"stream": 1e999`, `NaN`) gets 422 naming the fields, without echoing
  the values (FastAPI's default echo of an infinite float cannot even be serialized: that was a 500).
- A Gradio call naming an endpoint the page does not have (`/gradio_api/call/nope`, `queue/join` with an unknown
  `fn_index`) gets 404 pointing at the page's API description; Gradio itself raised and logged a traceback.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from ui.asgi import replaying

MAX_LISTED = 5
"""At most this many validation problems are spelled out."""
_NAMED_CALL = re.compile(r"/gradio_api/(?:call/v2|call|run|api)/(?P<name>[^/]+)/?$")


def validation_message(errors: list[dict[str, Any]]) -> str:
    """`field: problem; ...` for pydantic's errors (the first `MAX_LISTED`), with no input value in it."""
    parts = []
    for error in errors[:MAX_LISTED]:
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "body"
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    more = f" (and {len(errors) - MAX_LISTED} more)" if len(errors) > MAX_LISTED else ""
    return "invalid request body: " + "; ".join(parts) + more


def api_validation_handler(_request: Any, exc: Any) -> Any:
    """FastAPI exception handler for the HTTP API: 422 in the OpenAI error shape the API uses."""
    from fastapi.responses import JSONResponse

    body = {"error": {"message": validation_message(exc.errors()), "type": "invalid_request_error",
                      "code": "invalid_body"}}  # fmt: skip
    return JSONResponse(body, status_code=422)


def gradio_validation_handler(_request: Any, exc: Any) -> Any:
    """The same for a mounted Gradio app, in Gradio's `{"detail": ...}` shape."""
    from fastapi.responses import JSONResponse

    return JSONResponse({"detail": validation_message(exc.errors())}, status_code=422)


class GradioEndpointCheck:
    """ASGI middleware: a call to an endpoint a mounted Gradio page does not have is answered 404 here.

    `pages` maps each mount prefix (`""` for the page at `/`) to its Blocks. Checked: `POST .../gradio_api/call/NAME`
    (also `call/v2`, `run`, `api`) against the page's `api_name`s, and the `fn_index` in the bodies of
    `POST .../gradio_api/queue/join` and `.../run/predict` (events that skip the queue) against its functions (a
    missing one: 422).
    """

    def __init__(self, app: Callable[..., Awaitable[None]], pages: Mapping[str, Any]):
        self.app = app
        self.pages = sorted(pages.items(), key=lambda item: -len(item[0]))  # longest prefix first

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        prefix, blocks = next(((p, b) for p, b in self.pages if path.startswith(p + "/gradio_api/")), ("", None))
        if blocks is None:
            await self.app(scope, receive, send)
            return
        rest = path[len(prefix) :]
        indexed = rest.rstrip("/") in ("/gradio_api/queue/join", "/gradio_api/run/predict")  # fn_index in the body
        named = None if indexed else _NAMED_CALL.match(rest)
        if named:
            name = named.group("name")
            if name not in {fn.api_name for fn in blocks.fns.values()}:
                await _refuse(send, 404, f"this page has no endpoint named {name!r}", prefix)
                return
            await self.app(scope, receive, send)
            return
        if not indexed:
            await self.app(scope, receive, send)
            return
        body, receive = await _read_body(receive)
        try:
            payload = json.loads(body)
        except ValueError:  # not JSON: Gradio's validation answers 422
            payload = None
        fn_index = payload.get("fn_index") if isinstance(payload, dict) else 0
        if fn_index is None:
            await _refuse(send, 422, "queue/join needs the fn_index of one of this page's functions", prefix)
            return
        if isinstance(fn_index, int) and not isinstance(fn_index, bool) and fn_index not in blocks.fns:
            await _refuse(send, 404, f"this page has no function {fn_index}", prefix)
            return
        await self.app(scope, receive, send)


async def _read_body(receive: Any) -> tuple[bytes, Any]:
    """The whole request body, and a `receive` that hands it on to the app."""
    body = bytearray()
    more = True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            break
        body += message.get("body", b"")
        more = message.get("more_body", False)
    return bytes(body), replaying(body, receive)


async def _refuse(send: Any, status: int, message: str, prefix: str) -> None:
    body = json.dumps({"detail": f"{message}; its endpoints are listed at {prefix}/gradio_api/info"}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})

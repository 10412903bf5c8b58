"""Accounts and sessions for the agent console and the admin page.

Passwords are hashed by the store (scrypt); a login creates a session row with an expiry and sets an HttpOnly
cookie holding its random token. `GuardMiddleware` refuses every request under `/agent` and `/admin` (pages,
Gradio's API, queue, upload and file routes, static assets alike) without a valid session, and everything under
`/admin` to users who are not admins. The Gradio apps get the same check as their `auth_dependency`, so
`gr.Request.username` is the logged-in user inside handlers.
"""

from __future__ import annotations

import html
import json
from collections.abc import Awaitable, Callable
from http.cookies import SimpleCookie
from typing import Any, Literal
from urllib.parse import quote, urlencode

from chatbot.store import Store, User

COOKIE = "chatbot_session"
"""Name of the session cookie."""

Role = Literal["agent", "admin"]

# Which role each protected prefix needs; an admin may also use the agent console.
PROTECTED: tuple[tuple[str, tuple[Role, ...]], ...] = (
    ("/admin", ("admin",)),
    ("/agent", ("agent", "admin")),
)


def required_roles(path: str) -> tuple[Role, ...] | None:
    """The roles allowed on `path`, or None when the path is public."""
    for prefix, roles in PROTECTED:
        if path == prefix or path.startswith(prefix + "/"):
            return roles
    return None


def cookie_token(headers: list[tuple[bytes, bytes]] | dict[str, str]) -> str | None:
    """The session token from a request's Cookie header(s), if any."""
    values = (
        [v.decode("latin-1") for k, v in headers if k.lower() == b"cookie"]
        if isinstance(headers, list)
        else [headers.get("cookie", "")]
    )
    for value in values:
        jar = SimpleCookie()
        try:
            jar.load(value)
        except Exception:  # a malformed cookie header is simply no session
            continue
        if COOKIE in jar:
            return jar[COOKIE].value
    return None


def session_user(store: Store, token: str | None) -> User | None:
    """The user of an unexpired session token, else None."""
    return store.session_user(token) if token else None


def safe_next(target: str | None) -> str:
    """A post-login redirect target: only our own protected pages, never another site."""
    if target and required_roles(target.split("?")[0]) is not None and not target.startswith("//"):
        return target
    return "/agent"


class GuardMiddleware:
    """ASGI middleware: no session, no `/agent` or `/admin` (HTTP and websockets).

    Browsers asking for a page are redirected to the login form; API calls get 401 (no session) or 403 (wrong
    role) with a JSON body saying why.
    """

    def __init__(self, app: Callable[..., Awaitable[None]], store: Store):
        self.app = app
        self.store = store

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        roles = required_roles(scope.get("path", ""))
        if roles is None:
            await self.app(scope, receive, send)
            return
        user = session_user(self.store, cookie_token(scope.get("headers", [])))
        if user is not None and user.role in roles:
            scope.setdefault("state", {})["user"] = user
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 4401 if user is None else 4403})
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        wants_page = scope.get("method") == "GET" and "text/html" in headers.get("accept", "")
        if user is None and wants_page:
            path = scope.get("path", "")
            query = scope.get("query_string", b"").decode("latin-1")
            target = path + (f"?{query}" if query else "")
            await _respond(send, 303, b"", [(b"location", f"/login?{urlencode({'next': target})}".encode())])
            return
        if user is None:
            status, message = 401, "login required: sign in at /login"
        else:
            status, message = 403, f"user {user.name!r} ({user.role}) may not use {roles[0]} pages"
        body = json.dumps({"detail": message}).encode()
        await _respond(send, status, body, [(b"content-type", b"application/json")])


async def _respond(send: Any, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [*headers, (b"content-length", str(len(body)).encode())]})  # fmt: skip
    await send({"type": "http.response.body", "body": body})


def gradio_auth(store: Store, roles: tuple[Role, ...]) -> Callable[[Any], str | None]:
    """An `auth_dependency` for `gr.mount_gradio_app`: the user's name when the session allows `roles`."""

    def dependency(request: Any) -> str | None:
        user = session_user(store, request.cookies.get(COOKIE))
        return user.name if user is not None and user.role in roles else None

    return dependency


def login_page(next_target: str = "/agent", error: str = "", username: str = "") -> str:
    """The login form (plain HTML: it works before any Gradio page may be loaded)."""
    error_html = f'<p class="error" role="alert">{html.escape(error)}</p>' if error else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in · support desk</title>
<style>
 body {{ font-family: system-ui, sans-serif; background: #f4f4f6; display: grid; place-items: center;
        min-height: 100vh; margin: 0; }}
 form {{ background: white; padding: 2rem 2.5rem; border-radius: 12px; box-shadow: 0 2px 12px #0002;
        display: grid; gap: .8rem; min-width: 18rem; }}
 h1 {{ font-size: 1.3rem; margin: 0 0 .5rem; }}
 label {{ display: grid; gap: .25rem; font-size: .9rem; }}
 input {{ padding: .55rem; font-size: 1rem; border: 1px solid #bbb; border-radius: 6px; }}
 button {{ padding: .6rem; font-size: 1rem; background: #ea580c; color: white; border: 0; border-radius: 6px;
          cursor: pointer; }}
 .error {{ color: #b91c1c; margin: 0; }}
</style></head>
<body><form method="post" action="/login">
<h1>Support desk · sign in</h1>{error_html}
<label>User name <input name="username" autocomplete="username" required value="{html.escape(username)}"></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required></label>
<input type="hidden" name="next" value="{html.escape(next_target)}">
<button type="submit">Sign in</button>
</form></body></html>"""


def logout_page() -> str:
    """The sign-out confirmation: `GET /logout` (the pages' "Sign out" links) shows it, its button posts the form
    (signing out is a POST, so a link or image on another site cannot do it)."""
    return """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign out · support desk</title>
<style>
 body { font-family: system-ui, sans-serif; background: #f4f4f6; display: grid; place-items: center;
        min-height: 100vh; margin: 0; }
 form { background: white; padding: 2rem 2.5rem; border-radius: 12px; box-shadow: 0 2px 12px #0002;
        display: grid; gap: .8rem; min-width: 18rem; }
 button { padding: .6rem; font-size: 1rem; background: #ea580c; color: white; border: 0; border-radius: 6px;
          cursor: pointer; }
</style></head>
<body><form method="post" action="/logout">
<h1>Sign out of the support desk?</h1>
<button type="submit" autofocus>Sign out</button>
<a href="/agent">Back to the agent console</a>
</form></body></html>"""


def login_redirect_url(next_target: str) -> str:
    return f"/login?next={quote(next_target)}"

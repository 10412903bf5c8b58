"""The HTTP API: OpenAI-compatible chat completions over the engine, health, and FAQ reload.

- `POST /v1/chat/completions` (streamed as server-sent events, or whole): the last user message goes through the
  whole engine (retrieval, routing, grounding, recording), like a customer's message in the chat page. The
  conversation lives on the server: pass `conversation_id` and `conversation_secret` (extra body fields; the
  first response carries both) to continue one, else a new conversation starts. Each response has an extra
  `chatbot` object: `route`, `sources` (`faq_id`, `question`, `score`), `conversation_id` (with
  `conversation_secret` in a conversation's first response), `message_id`, `grounded`, `language`, `index_version`,
  `adapter`, `fallback` and the final `text` (a streamed reply can be replaced by the FAQ answer when it fails the
  grounding check; the last chunk then says so).
- `GET /v1/models`: the one model, `support-bot`.
- `GET /api/health`: model loaded, index version, queue depth, active chats.
- `POST /api/faq/reload` with `Authorization: Bearer <admin token>`: re-read the knowledge base's current version
  from disk (after `chatbot kb build`), or with a JSON body `{"path": FILE}` validate and build that file first
  (FILE lies in the import folder, `[server] import_dir`; no symlinks; problems are reported by line, without the
  file's contents).

Bodies over `limits.max_body_bytes` and requests with more than `limits.max_messages` messages get 413.
"""

from __future__ import annotations

import hmac
import json
import os
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

MODEL_ID = "support-bot"
RETRY_AFTER_S = 5
"""`Retry-After` seconds on a 503 when every reply slot is taken."""


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: str
    content: str | list[dict[str, Any]] | None = None


class ChatRequest(BaseModel):
    """The subset of OpenAI's chat request the bot uses; unknown fields are accepted and ignored."""

    model_config = ConfigDict(extra="allow")
    model: str | None = None
    messages: list[ChatMessage]
    stream: bool = False
    conversation_id: str | None = None
    conversation_secret: str | None = None


class ReloadRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str | None = None


class ActiveChats:
    """Counts replies being generated right now (health and the admin page show it)."""

    def __init__(self) -> None:
        self._n = 0
        self._lock = threading.Lock()

    def __enter__(self) -> ActiveChats:
        with self._lock:
            self._n += 1
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._n -= 1

    @property
    def n(self) -> int:
        return self._n

    def reserve(self, capacity: int) -> bool:
        """Count one more reply if fewer than `capacity` are in progress; False (nothing counted) when full."""
        with self._lock:
            if self._n >= capacity:
                return False
            self._n += 1
            return True


def _text_of(message: ChatMessage) -> str:
    if isinstance(message.content, list):  # OpenAI's content parts: keep the text ones
        return "".join(str(p.get("text", "")) for p in message.content if p.get("type") == "text")
    return message.content or ""


def _error(status: int, message: str, code: str = "invalid_request") -> Any:
    from fastapi.responses import JSONResponse

    kind = "invalid_request_error" if status < 500 else "server_error"
    return JSONResponse({"error": {"message": message, "type": kind, "code": code}}, status_code=status)


class ImportPathError(ValueError):
    """A reload path outside the import folder, through a symlink, or of an unsupported type."""


FAQ_SUFFIXES = (".jsonl", ".csv", ".md")


def import_file(config: Any, name: str) -> Path:
    """The FAQ file `name` (relative to the import folder, or absolute inside it) after the checks, else
    `ImportPathError` saying what is allowed."""
    from chatbot.settings import chatbot_home

    root = Path(config.server.import_dir).expanduser()
    root = Path(os.path.abspath(root if root.is_absolute() else chatbot_home() / root))
    where = f"FAQ files are built over HTTP only from the import folder {root} ([server] import_dir)"
    candidate = Path(os.path.abspath(root / name))  # `..` is resolved here, symlinks are not followed
    if not candidate.is_relative_to(root) or candidate == root:
        raise ImportPathError(f"{where}; copy the file there and pass its name")
    for part in (candidate, *candidate.parents):
        if part == root:
            break
        if part.is_symlink():
            raise ImportPathError(f"{where}; symlinks are refused: copy the file itself there")
    if candidate.suffix.lower() not in FAQ_SUFFIXES:
        raise ImportPathError(f"unsupported FAQ file type {candidate.suffix or '(none)'}: use .jsonl, .csv or .md")
    return candidate


def problem_summary(message: str) -> str:
    """A validation problem without what the file contains (no cell, header or id is echoed over HTTP)."""
    cut = min((i for i in (message.find(c) for c in ":'\"{(") if i > 0), default=len(message))
    return message[:cut].strip() + "; run `chatbot kb validate FILE` on the server for details"


def admin_token(config: Any) -> str | None:
    """The token `POST /api/faq/reload` expects: `[server] admin_token`, else `$CHATBOT_ADMIN_TOKEN`."""
    return config.server.admin_token or os.environ.get("CHATBOT_ADMIN_TOKEN") or None


def create_router(engine: Any, config: Any, active: ActiveChats) -> Any:
    """The API routes over a warmed-up engine."""
    from fastapi import APIRouter, Header
    from fastapi.responses import StreamingResponse

    from chatbot.engine import InputError

    router = APIRouter()

    @router.get("/v1/models")
    def models() -> dict[str, Any]:
        """The one model this server offers."""
        return {"object": "list",
                "data": [{"id": MODEL_ID, "object": "model", "created": 0, "owned_by": "chatbot"}]}  # fmt: skip

    @router.post("/v1/chat/completions")
    def chat(body: ChatRequest):
        """One customer message through the engine, as an OpenAI chat completion."""
        if len(body.messages) > config.limits.max_messages:
            return _error(413, f"{len(body.messages)} messages; at most {config.limits.max_messages} "
                          "(limits.max_messages): the conversation lives on the server, send only the new message "
                          "with its conversation_id", "too_many_messages")  # fmt: skip
        users = [m for m in body.messages if m.role == "user"]
        if not users:
            return _error(400, "messages must contain a user message", "no_user_message")
        text = _text_of(users[-1])
        if body.conversation_id is not None and not engine.store.check_secret(
            body.conversation_id, body.conversation_secret
        ):
            return _error(
                404,
                "unknown conversation or wrong conversation_secret: continue a conversation with the "
                "conversation_id and conversation_secret of its first response",
                "unknown_conversation",
            )
        capacity = config.scheduler.max_batch + config.scheduler.max_queue
        if not active.reserve(capacity):  # the scheduler would queue it behind a minute of others: say so now
            response = _error(503, f"{active.n} replies are in progress (scheduler.max_batch + max_queue = "
                              f"{capacity}); retry in a few seconds", "busy")  # fmt: skip
            response.headers["Retry-After"] = str(RETRY_AFTER_S)
            return response
        secret = None
        try:
            conversation_id = body.conversation_id
            if conversation_id is None:
                conversation_id = engine.start_conversation(channel="api")
                secret = engine.store.conversation_secret(conversation_id)
            cancel = threading.Event()
            stream = engine.stream(conversation_id, text, cancel=cancel)
        except InputError as exc:
            active.__exit__()
            return _error(400 if exc.code != "unknown_conversation" else 404, str(exc), exc.code)
        except BaseException:
            active.__exit__()
            raise

        def extra() -> dict[str, Any]:
            out = stream.reply.to_json()
            if secret is not None:
                out["conversation_secret"] = secret
            return out

        completion_id = f"chatcmpl-{uuid.uuid4().hex}"
        created = int(time.time())
        finish = "stop"

        if not body.stream:
            try:
                for _ in stream:
                    pass
            finally:
                active.__exit__()
            reply = stream.reply
            return {
                "id": completion_id, "object": "chat.completion", "created": created, "model": MODEL_ID,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": reply.text},
                             "finish_reason": finish}],
                "chatbot": extra(),
            }  # fmt: skip

        def chunk(delta: dict[str, Any], finish_reason: str | None = None, extra: dict | None = None) -> str:
            payload: dict[str, Any] = {
                "id": completion_id, "object": "chat.completion.chunk", "created": created, "model": MODEL_ID,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
            }  # fmt: skip
            if extra is not None:
                payload["chatbot"] = extra
            return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"

        def events():
            try:
                yield chunk({"role": "assistant", "content": ""})
                for piece in stream:
                    yield chunk({"content": piece})
                yield chunk({}, finish, extra())
                yield "data: [DONE]\n\n"
            finally:
                active.__exit__()
                if not stream.done:  # the client went away: stop generating, record what was sent
                    stream.close()

        return StreamingResponse(events(), media_type="text/event-stream", headers={"cache-control": "no-cache"})

    @router.get("/api/health")
    def health() -> dict[str, Any]:
        """Model loaded, index version, queue depth, replies in progress, the generation backend and model, and
        the process id of the worker that answered (several workers share a port)."""
        info = engine.health()
        return {
            "status": "ok" if info.get("ready") and info.get("model_loaded") else "starting",
            "model_loaded": info.get("model_loaded", False),
            "index_version": info.get("index_version"),
            "queue_depth": info.get("queue_depth", 0),
            "active_chats": active.n,
            "adapter": info.get("adapter"),
            "backend": info.get("backend"),
            "backend_reason": info.get("backend_reason"),
            "model": info.get("model"),
            "worker": os.getpid(),
        }

    @router.post("/api/faq/reload")
    def reload(body: ReloadRequest | None = None, authorization: str | None = Header(None)):
        """Swap in the knowledge base's current on-disk version, or build `path` first (admin token)."""
        expected = admin_token(config)
        if expected is None:
            return _error(404, "FAQ reload over HTTP is off: set [server] admin_token or $CHATBOT_ADMIN_TOKEN",
                          "disabled")  # fmt: skip
        scheme, _, given = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected.encode()):
            return _error(401, "a valid admin token is required: Authorization: Bearer <token>", "unauthorized")
        from knowledge_base.loaders import validate_faq

        kb = engine.kb
        previous = kb.current_version
        try:
            if body is not None and body.path:
                try:
                    path = import_file(config, body.path)
                except ImportPathError as exc:
                    return _error(400, str(exc), "path_not_allowed")
                if not path.is_file():
                    return _error(404, f"no file {path.name!r} in the import folder", "not_found")
                problems = validate_faq(path)
                if problems:
                    from fastapi.responses import JSONResponse

                    shown = problems[: config.limits.max_problems]
                    return JSONResponse(status_code=422, content={"error": {
                        "message": f"{path.name}: {len(problems)} problem(s)"
                                   + (f", the first {len(shown)} listed" if len(shown) < len(problems) else "")
                                   + "; the FAQ in use is unchanged",
                        "type": "invalid_request_error", "code": "invalid_faq", "total": len(problems),
                        "problems": [{"line": p.line, "message": problem_summary(p.message)} for p in shown],
                    }, "index_version": previous})  # fmt: skip
                version = kb.build(path).version
            else:
                version = kb.reload()
        except Exception as exc:  # noqa: BLE001 - any failure leaves the old version answering; say why
            return _error(500, f"reload failed, version {previous} still answers: {exc}", "reload_failed")
        return {"index_version": version, "previous": previous, "changed": version != previous,
                "entries": len(kb.entries())}  # fmt: skip

    return router

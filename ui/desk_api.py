"""The support desk over HTTP, under `/agent/api` (JSON): the same service and rules as the agent console.

Signed in like the console (the session cookie from `/login`; `GuardMiddleware` refuses anyone else with 401/403),
and like the console's, a state-changing request from another site is refused. Errors come in the API's shape,
`{"error": {"message", "type", "code"}}`: 404 `unknown_conversation` / `unknown_draft`, 409 `stale_draft` (the
version sent is not the draft's: nothing was sent), 409 `refused` for another action the state does not allow.

| route | does |
|---|---|
| `GET /agent/api/inbox?state=&q=` | conversations (`items`) and the count in each state (`counts`) |
| `GET /agent/api/conversations/{id}` | state, assignee, messages, the draft to review (with its `version`), typing |
| `POST /agent/api/conversations/{id}/assign` · `/reply` `{"text"}` · `/hand_back` · `/resolve` · `/reopen` | |
| `POST /agent/api/drafts/{id}/approve` `{"version", "text"?}` · `/reject` `{"version", "reason"}` | |
"""

# No `from __future__ import annotations`: FastAPI reads the route functions' hints at runtime.
from dataclasses import asdict
from typing import Any, Literal

from pydantic import BaseModel, Field

from chatbot.desk import ConversationView, Desk, DeskError, StaleDraftError

PREFIX = "/agent/api"


class ReplyBody(BaseModel):
    text: str = Field(max_length=20_000)


class ApproveBody(BaseModel):
    version: str = Field(max_length=200)
    """The `draft.version` the agent read (from `GET /agent/api/conversations/{id}`)."""
    text: str | None = Field(default=None, max_length=20_000)
    """The agent's edit; absent or null sends the draft as it is."""


class RejectBody(BaseModel):
    version: str = Field(max_length=200)
    reason: str = Field(max_length=2_000)


def view_json(view: ConversationView) -> dict[str, Any]:
    """A conversation as the API returns it."""
    draft = view.draft
    return {
        "conversation_id": view.conversation_id, "state": view.state, "assignee": view.assignee,
        "language": view.language, "typing": list(view.typing),
        "messages": [{"id": m.id, "role": m.role, "kind": m.kind, "text": m.text, "agent": m.agent,
                      "route": m.route, "created_at": m.created_at} for m in view.messages],
        "draft": None if draft is None else {
            "id": draft.id, "version": draft.version, "text": draft.text, "language": draft.language,
            "grounded": draft.grounded, "sources": list(draft.sources),
            "question_message_id": draft.question_message_id,
        },
    }  # fmt: skip


def _error(exc: DeskError) -> Any:
    from fastapi.responses import JSONResponse

    message = str(exc)
    if isinstance(exc, StaleDraftError):
        status, code = 409, "stale_draft"
    elif message.startswith("unknown conversation"):
        status, code = 404, "unknown_conversation"
    elif message.startswith("unknown draft"):
        status, code = 404, "unknown_draft"
    else:
        status, code = 409, "refused"
    return JSONResponse({"error": {"message": message, "type": "invalid_request_error", "code": code}},
                        status_code=status)  # fmt: skip


def _agent(request: Any) -> str:
    return request.state.user.name  # set by GuardMiddleware for every /agent path it lets through


def create_router(desk: Desk) -> Any:
    """The desk's routes; include them before the console's Gradio mount (which would answer `/agent/...`)."""
    from fastapi import APIRouter, Request

    router = APIRouter(prefix=PREFIX, tags=["desk"])

    def act(fn: Any) -> Any:
        try:
            return fn()
        except DeskError as exc:
            return _error(exc)

    @router.get("/inbox")
    def inbox(state: Literal["bot", "waiting", "with_agent", "resolved"] | None = None, q: str = ""):
        """Conversations, those waiting for a person first, then by latest activity; filter by state, search text."""
        return {"items": [asdict(i) for i in desk.inbox(state, q[:200])], "counts": desk.counts()}

    @router.get("/conversations/{conversation_id}")
    def conversation(conversation_id: str, request: Request):
        """One conversation (it counts as read by the agent)."""
        return act(lambda: view_json(desk.view(conversation_id, _agent(request))))

    def then_view(conversation_id: str, request: Request, fn: Any) -> Any:
        def run() -> dict[str, Any]:
            fn()
            return view_json(desk.view(conversation_id, _agent(request)))

        return act(run)

    @router.post("/conversations/{conversation_id}/assign")
    def assign(conversation_id: str, request: Request):
        """Assign the conversation to the signed-in agent; the bot stays silent there."""
        return then_view(conversation_id, request, lambda: desk.assign(conversation_id, _agent(request)))

    @router.post("/conversations/{conversation_id}/reply")
    def reply(conversation_id: str, body: ReplyBody, request: Request):
        """Send the agent's message to the customer."""
        return then_view(conversation_id, request, lambda: desk.reply(conversation_id, _agent(request), body.text))

    @router.post("/conversations/{conversation_id}/hand_back")
    def hand_back(conversation_id: str, request: Request):
        """Give the conversation back to the bot (the customer is told)."""
        return then_view(conversation_id, request, lambda: desk.hand_back(conversation_id, _agent(request)))

    @router.post("/conversations/{conversation_id}/resolve")
    def resolve(conversation_id: str, request: Request):
        """Close the conversation with a closing notice to the customer."""
        return then_view(conversation_id, request, lambda: desk.resolve(conversation_id, _agent(request)))

    @router.post("/conversations/{conversation_id}/reopen")
    def reopen(conversation_id: str, request: Request):
        """Open a resolved conversation again, assigned to the signed-in agent."""
        return then_view(conversation_id, request, lambda: desk.reopen(conversation_id, _agent(request)))

    @router.post("/drafts/{draft_id}/approve")
    def approve(draft_id: int, body: ApproveBody, request: Request):
        """Send the draft of that version (as is, or `text`); another version is refused with 409."""
        return act(lambda: {"message_id": desk.approve(draft_id, body.version, _agent(request), body.text)})

    @router.post("/drafts/{draft_id}/reject")
    def reject(draft_id: int, body: RejectBody, request: Request):
        """Reject the draft of that version with a reason; the conversation then waits for a person."""
        return act(lambda: desk.reject(draft_id, body.version, _agent(request), body.reason) or {"rejected": draft_id})

    return router

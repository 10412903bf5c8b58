"""The agent console at `/agent` (login): drafts to review, handed-off chats to answer, auto-sent replies to rate
or correct. Refreshed by a timer; every action names the logged-in agent."""

# No `from __future__ import annotations`: Gradio reads the `gr.Request` hints of the handlers at runtime.
import time
from typing import Any

from ui.render import as_text, console_history

REFRESH_S = 3.0


def _age(created: float) -> str:
    seconds = max(0, int(time.time() - created))
    if seconds < 60:
        return f"{seconds}s ago"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    return f"{seconds // 3600} h ago"


def _preview(text: str, n: int = 60) -> str:
    one = " ".join(text.split())
    return one if len(one) <= n else one[: n - 1] + "…"


def agent_name(request: Any) -> str:
    """The logged-in user (set by the mount's auth dependency); refuses a request without one."""
    import gradio as gr

    name = getattr(request, "username", None) if request is not None else None
    if not name:
        raise gr.Error("login required: sign in at /login", title="Not signed in")
    return name


class AgentConsole:
    """The console's handlers over the store (the Gradio wiring is in `build`)."""

    def __init__(self, engine: Any):
        self.engine = engine

    @property
    def store(self) -> Any:
        return self.engine.store

    # -- queues -----------------------------------------------------------------------------------------------
    def draft_choices(self) -> list[tuple[str, int]]:
        """Pending drafts, oldest first, as dropdown choices."""
        choices = []
        for d in self.store.pending_drafts():
            question = next((m.text for m in reversed(d.context) if m.role == "user"), "")
            choices.append((f"#{d.id} · {d.language or '?'} · {_age(d.created_at)} · {_preview(question)}", d.id))
        return choices

    def handoff_choices(self) -> list[tuple[str, str]]:
        """Handed-off conversations waiting for a person, oldest first."""
        out = []
        for h in self.store.open_handoffs():
            last = next((m.text for m in reversed(h["messages"]) if m.role == "user"), "")
            out.append((f"{h['conversation_id'][:8]} · {_age(h['created_at'])} · {_preview(last)}",
                        h["conversation_id"]))  # fmt: skip
        return out

    def recent_choices(self, limit: int = 30) -> list[tuple[str, int]]:
        """Recently auto-sent bot replies, newest first."""
        recent = self.store.recent_auto_sent(limit)
        return [(f"#{m.id} · {_age(m.created_at)} · {_preview(m.text)}", m.id) for m in recent]

    def refresh(self, draft: int | None, handoff: str | None, recent: int | None) -> tuple[Any, Any, Any, str]:
        """Timer: new queue contents, keeping each selection while it is still there."""
        import gradio as gr

        drafts, handoffs, recents = self.draft_choices(), self.handoff_choices(), self.recent_choices()

        def keep(choices: list, value: Any) -> Any:
            values = [v for _, v in choices]
            return gr.update(choices=choices, value=value if value in values else (values[0] if values else None))

        summary = f"**{len(drafts)}** draft(s) to review · **{len(handoffs)}** chat(s) waiting for a person"
        return keep(drafts, draft), keep(handoffs, handoff), keep(recents, recent), summary

    # -- drafts -----------------------------------------------------------------------------------------------
    def show_draft(self, draft_id: int | None) -> tuple[list, str, str, str]:
        """The conversation, sources with scores, language and the draft text."""
        if draft_id is None:
            return [], "No draft selected.", "", ""
        from chatbot.store import NotFoundError

        try:
            draft = self.store.draft(int(draft_id))
        except NotFoundError:
            return [], f"Draft {draft_id} no longer exists.", "", ""
        context = self.store.messages(draft.conversation_id)
        context = [m for m in context if m.id <= draft.question_message_id]
        rows = ["| FAQ entry | question | score |", "|---|---|---|"]
        for s in draft.sources:
            rows.append(f"| {as_text(str(s.get('faq_id', '')))} | {as_text(str(s.get('question', '')))} | "
                        f"{float(s.get('score', 0)):.2f} |")  # fmt: skip
        sources = "\n".join(rows) if draft.sources else "*No sources.*"
        details = (f"**Draft #{draft.id}** · language **{as_text(draft.language or '?')}** · "
                   f"grounded: {'yes' if draft.grounded else 'no'} · state: {draft.state}\n\n{sources}")  # fmt: skip
        return console_history(context), details, draft.text, draft.language or ""

    def approve(self, draft_id: int | None, text: str | None, agent: str, edited: bool) -> str:
        """Send the draft as is (`edited=False`) or with the agent's text."""
        from chatbot.store import StoreError

        if draft_id is None:
            return "Select a draft first."
        if edited and not (text or "").strip():
            return "The edited reply is empty: write the text to send, or approve the draft as is."
        try:
            self.store.approve_draft(int(draft_id), agent, text if edited else None)
        except StoreError as exc:
            return f"Not sent: {exc}"
        return f"Draft #{draft_id} sent by {agent}."

    def reject(self, draft_id: int | None, reason: str | None, agent: str) -> str:
        """Reject with a reason; the customer is handed to a person."""
        from chatbot.store import StoreError

        if draft_id is None:
            return "Select a draft first."
        if not (reason or "").strip():
            return "Give a reason for the rejection (it is kept for the FAQ and training review)."
        try:
            self.store.reject_draft(int(draft_id), agent, reason.strip())
        except StoreError as exc:
            return f"Not rejected: {exc}"
        return f"Draft #{draft_id} rejected; the conversation is now in the handoff queue."

    # -- handoffs ---------------------------------------------------------------------------------------------
    def show_conversation(self, conversation_id: str | None) -> list:
        from chatbot.store import NotFoundError

        if not conversation_id:
            return []
        try:
            return console_history(self.store.messages(conversation_id))
        except NotFoundError:
            return []

    def reply(self, conversation_id: str | None, text: str | None, agent: str) -> tuple[list, str, str]:
        """Send the agent's message to a handed-off customer."""
        from chatbot.store import StoreError

        if not conversation_id:
            return [], "Select a conversation first.", text or ""
        if not (text or "").strip():
            return self.show_conversation(conversation_id), "Type a reply first.", ""
        try:
            self.store.agent_reply(conversation_id, agent, text.strip())
        except StoreError as exc:
            return self.show_conversation(conversation_id), f"Not sent: {exc}", text or ""
        return self.show_conversation(conversation_id), f"Sent by {agent}.", ""

    def give_back(self, conversation_id: str | None, agent: str) -> str:
        """Close the handoff: the bot answers this customer again."""
        if not conversation_id:
            return "Select a conversation first."
        self.store.resolve_handoff(conversation_id, agent)
        return f"Conversation {conversation_id[:8]} handed back to the bot."

    # -- auto-sent replies ------------------------------------------------------------------------------------
    def show_sent(self, message_id: int | None) -> tuple[list, str]:
        from chatbot.store import NotFoundError

        if message_id is None:
            return [], ""
        try:
            message = self.store.message(int(message_id))
        except NotFoundError:
            return [], ""
        context = [m for m in self.store.messages(message.conversation_id) if m.id <= message.id]
        return console_history(context), message.text

    def rate_sent(self, message_id: int | None, up: bool, agent: str) -> str:
        if message_id is None:
            return "Select a reply first."
        self.store.add_feedback(int(message_id), up, f"agent {agent}")
        return f"Reply #{message_id} rated {'👍' if up else '👎'}."

    def correct_sent(self, message_id: int | None, text: str | None, agent: str) -> str:
        """Send a corrected reply to the customer; it joins the training export as an agent-written reply."""
        from chatbot.store import StoreError

        if message_id is None:
            return "Select a reply first."
        if not (text or "").strip():
            return "Write the corrected reply first."
        message = self.store.message(int(message_id))
        if text.strip() == message.text.strip():
            return "The text is unchanged: edit it before sending a correction."
        try:
            self.store.agent_reply(message.conversation_id, agent, text.strip())
        except StoreError as exc:
            return f"Not sent: {exc}"
        self.store.add_feedback(int(message_id), False, f"corrected by agent {agent}")
        return f"Correction of reply #{message_id} sent to the customer by {agent}."


def build(engine: Any) -> Any:
    """The agent console as Gradio Blocks."""
    import gradio as gr

    console = AgentConsole(engine)
    with gr.Blocks(title="Agent console") as demo:
        with gr.Row():
            gr.Markdown("## Agent console")
            who = gr.Markdown("", elem_id="agent-who")
            gr.HTML('<a href="/logout">Sign out</a>', elem_id="logout")
        summary = gr.Markdown("", elem_id="agent-summary")
        timer = gr.Timer(REFRESH_S)
        with gr.Tab("Drafts to review", elem_id="tab-drafts"):
            draft = gr.Dropdown(
                label="Drafts, oldest first", choices=[], elem_id="draft-select", allow_custom_value=True
            )
            with gr.Row():
                with gr.Column(scale=3):
                    draft_chat = gr.Chatbot(label="Conversation", height=320, latex_delimiters=[],
                                            sanitize_html=True, allow_tags=False, feedback_options=None)  # fmt: skip
                with gr.Column(scale=2):
                    draft_info = gr.Markdown("", elem_id="draft-info")
                    draft_language = gr.Textbox(label="Language", interactive=False)
            draft_text = gr.Textbox(label="Draft (edit before sending if needed)", lines=4, elem_id="draft-text")
            with gr.Row():
                approve = gr.Button("Approve and send", variant="primary", elem_id="approve")
                send_edit = gr.Button("Send edited text", elem_id="send-edited")
            with gr.Row():
                reason = gr.Textbox(label="Reason for rejecting", scale=3, elem_id="reject-reason")
                reject = gr.Button("Reject (hand to a person)", variant="stop", scale=1, elem_id="reject")
            draft_status = gr.Markdown("", elem_id="draft-status")
        with gr.Tab("Chats waiting for a person", elem_id="tab-handoffs"):
            handoff = gr.Dropdown(
                label="Conversations, oldest first", choices=[], elem_id="handoff-select", allow_custom_value=True
            )
            handoff_chat = gr.Chatbot(label="Conversation", height=320, latex_delimiters=[], sanitize_html=True,
                                      allow_tags=False, feedback_options=None)  # fmt: skip
            handoff_text = gr.Textbox(label="Your reply", lines=3, elem_id="handoff-text")
            with gr.Row():
                handoff_send = gr.Button("Send reply", variant="primary", elem_id="handoff-send")
                handoff_back = gr.Button("Hand back to the bot", elem_id="handoff-back")
            handoff_status = gr.Markdown("")
        with gr.Tab("Recently auto-sent", elem_id="tab-recent"):
            recent = gr.Dropdown(
                label="Bot replies sent without review, newest first", choices=[], allow_custom_value=True
            )
            recent_chat = gr.Chatbot(label="Conversation", height=280, latex_delimiters=[], sanitize_html=True,
                                     allow_tags=False, feedback_options=None)  # fmt: skip
            correction = gr.Textbox(label="Corrected reply (sent to the customer, used for training)", lines=3)
            with gr.Row():
                good = gr.Button("👍 Good")
                bad = gr.Button("👎 Bad")
                correct = gr.Button("Send correction", variant="primary")
            recent_status = gr.Markdown("")

        def whoami(request: gr.Request) -> str:
            return f"Signed in as **{as_text(agent_name(request))}**"

        refresh_outputs = [draft, handoff, recent, summary]
        demo.load(whoami, None, who, api_name="whoami")
        demo.load(console.refresh, [draft, handoff, recent], refresh_outputs, api_name="refresh")
        timer.tick(console.refresh, [draft, handoff, recent], refresh_outputs, show_progress="hidden",
                   api_visibility="private")  # fmt: skip
        draft.change(console.show_draft, [draft], [draft_chat, draft_info, draft_text, draft_language],
                     api_name="show_draft")  # fmt: skip
        handoff.change(console.show_conversation, [handoff], [handoff_chat], api_name="show_conversation")
        recent.change(console.show_sent, [recent], [recent_chat, correction], api_name="show_sent")

        def do_approve(draft_id, request: gr.Request):
            return console.approve(draft_id, None, agent_name(request), edited=False)

        def do_send_edit(draft_id, text, request: gr.Request):
            return console.approve(draft_id, text, agent_name(request), edited=True)

        def do_reject(draft_id, why, request: gr.Request):
            return console.reject(draft_id, why, agent_name(request))

        def do_reply(conversation_id, text, request: gr.Request):
            return console.reply(conversation_id, text, agent_name(request))

        def do_give_back(conversation_id, request: gr.Request):
            return console.give_back(conversation_id, agent_name(request))

        def do_good(message_id, request: gr.Request):
            return console.rate_sent(message_id, True, agent_name(request))

        def do_bad(message_id, request: gr.Request):
            return console.rate_sent(message_id, False, agent_name(request))

        def do_correct(message_id, text, request: gr.Request):
            return console.correct_sent(message_id, text, agent_name(request))

        for event in (
            approve.click(do_approve, [draft], [draft_status], api_name="approve"),
            send_edit.click(do_send_edit, [draft, draft_text], [draft_status], api_name="send_edited"),
            reject.click(do_reject, [draft, reason], [draft_status], api_name="reject"),
            handoff_send.click(
                do_reply, [handoff, handoff_text], [handoff_chat, handoff_status, handoff_text], api_name="reply"
            ),
            handoff_back.click(do_give_back, [handoff], [handoff_status], api_name="give_back"),
            good.click(do_good, [recent], [recent_status], api_name="rate_good"),
            bad.click(do_bad, [recent], [recent_status], api_name="rate_bad"),
            correct.click(do_correct, [recent, correction], [recent_status], api_name="correct"),
        ):
            event.then(console.refresh, [draft, handoff, recent], refresh_outputs, api_visibility="private")
    demo.console = console
    return demo

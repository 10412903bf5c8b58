"""The agent console at `/agent` (login): the support desk's inbox and conversation pane, and the recently
auto-sent replies to rate or correct.

The inbox lists conversations with their state, the customer's last message, its age, an unread marker, the
assignee and a waiting draft; it filters by state and searches the messages' text. The selected conversation's
pane (messages with their times, who is assigned and typing, the draft to review with its sources) follows the
store live: a timer polls every `LIVE_S` seconds and redraws only what changed, and the tab title counts the
conversations waiting for a person. Every action goes through `chatbot.desk.Desk` and names the logged-in agent.

Safe review: the draft on screen is named in the page by its id *and* version (`#draft-ref`); approve, edit and
reject send that reference, so a click acts on that draft or is refused with the reason, never on another one.
The timer never swaps the draft under an agent's eyes: when it changes, the pane says so and waits for a click.
"""

# No `from __future__ import annotations`: Gradio reads the `gr.Request` hints of the handlers at runtime.
import datetime as dt
import time
from typing import Any

from chatbot.desk import STATE_LABELS, ConversationView, Desk, DeskError, InboxItem
from ui.render import as_markdown, as_text, console_history, role_label

LIVE_S = 1.0
"""How often the console looks for changes (the pane is at most this much behind the store, plus a round trip)."""
FILTERS = {"All": None, "Waiting": "waiting", "With an agent": "with_agent", "With the bot": "bot",
           "Resolved": "resolved"}  # fmt: skip
"""The inbox filter's choices: label -> state."""
ICONS = {"waiting": "◆", "with_agent": "▶", "bot": "○", "resolved": "✓"}
"""Plain symbols, not emoji: they show in every font."""
TITLE = "Agent console"
CSS = """
<style>
#inbox .wrap { flex-direction: column; align-items: stretch; gap: 4px; }
#inbox label { width: 100%; justify-content: flex-start; font-size: .92em; }
#pane-typing { min-height: 1.4em; color: #b45309; }
</style>
"""
TITLE_JS = """(summary) => {
  const m = /\\*\\*(\\d+)\\*\\* waiting/.exec(summary || "");
  const n = m ? Number(m[1]) : 0;
  document.title = (n > 0 ? `(${n}) ` : "") + "Agent console";
}"""
NO_DRAFT = ""


def _age(created: float, now: float | None = None) -> str:
    seconds = max(0, int((now or time.time()) - created))
    if seconds < 60:
        return f"{seconds}s ago"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 86400:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} d ago"


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


def inbox_label(item: InboxItem, now: float | None = None) -> str:
    """One inbox line: unread marker, state, age of the customer's last message, assignee, draft, preview."""
    parts = [f"{'● new · ' if item.unread else ''}{ICONS[item.state]} {STATE_LABELS[item.state]}",
             _age(item.customer_at, now), item.assignee or "unassigned"]  # fmt: skip
    if item.draft_id is not None:
        parts.append(f"draft #{item.draft_id} to review")
    return " · ".join(parts) + f" — {_preview(item.customer_text) or '(asked for a person, no message yet)'}"


def draft_ref(view: ConversationView) -> str:
    """What the page keeps of the draft on screen: `<id>|<version>` (empty without a draft)."""
    return f"{view.draft.id}|{view.draft.version}" if view.draft else NO_DRAFT


def parse_ref(ref: str | None) -> tuple[int, str] | None:
    """`<id>|<version>` -> (id, version); None for anything else."""
    draft_id, sep, version = (ref or "").partition("|")
    return (int(draft_id), version) if sep and draft_id.isdigit() and version else None


class AgentConsole:
    """The console's handlers over the desk service (the Gradio wiring is in `build`). Plain methods returning
    the values of their outputs, so tests call them directly."""

    def __init__(self, engine: Any):
        self.engine = engine
        self.desk = Desk(engine.store, engine.config)

    def _clock(self, when: float) -> str:
        zone = self.engine.config.desk.hours.timezone
        from zoneinfo import ZoneInfo

        moment = dt.datetime.fromtimestamp(when, ZoneInfo(zone))
        today = dt.datetime.now(ZoneInfo(zone)).date()
        return moment.strftime("%H:%M:%S" if moment.date() == today else "%Y-%m-%d %H:%M")

    # -- the inbox --------------------------------------------------------------------------------------------
    def inbox(self, filter_label: str | None, search: str | None, selected: str | None) -> tuple[Any, str]:
        """The inbox's choices (keeping the selection while it is listed) and the summary line."""
        import gradio as gr

        if filter_label not in FILTERS:
            filter_label = "All"
        items = self.desk.inbox(FILTERS[filter_label], (search or "").strip())
        now = time.time()
        choices = [(inbox_label(i, now), i.conversation_id) for i in items]
        values = {i.conversation_id for i in items}
        counts = self.desk.counts()
        summary = (f"**{counts['waiting']}** waiting for a person · **{counts['with_agent']}** with an agent · "
                   f"**{counts['bot']}** with the bot · **{counts['resolved']}** resolved")  # fmt: skip
        if not choices:
            summary += " · *no conversation matches the filter*"
        return gr.update(choices=choices, value=selected if selected in values else None), summary

    # -- the conversation pane --------------------------------------------------------------------------------
    def history(self, view: ConversationView) -> list[dict[str, Any]]:
        """The pane's messages, each labelled with who wrote it and when: the customer's words as typed (never
        markup), the bot's and agents' as safe Markdown, as the customer sees them."""
        rows = []
        for m in view.messages:
            if m.role == "system":
                continue
            route = f" · {m.route}" if m.role == "bot" and m.route else ""
            notice = " · notice" if m.kind == "notice" else ""
            tag = f"*{role_label(m.role, m.agent)}{route} · {self._clock(m.created_at)}{notice}*"
            body = as_text(m.text) if m.role == "user" else as_markdown(m.text)
            rows.append({"role": "user" if m.role == "user" else "assistant", "content": f"{tag}\n\n{body}"})
        return rows

    def header(self, view: ConversationView) -> str:
        assigned = f"assigned to **{as_text(view.assignee)}**" if view.assignee else "**nobody assigned**"
        return (f"{ICONS[view.state]} **{STATE_LABELS[view.state]}** · {assigned} · language "
                f"{as_text(view.language or '?')} · conversation `{view.conversation_id[:8]}`")  # fmt: skip

    @staticmethod
    def typing_line(view: ConversationView) -> str:
        if not view.typing:
            return ""
        return f"✎ {as_text(', '.join(view.typing))} {'is' if len(view.typing) == 1 else 'are'} typing…"

    def sources(self, view: ConversationView) -> str:
        """The draft's header and its sources (question, answer, score), shown beside the draft."""
        draft = view.draft
        lines = [f"**Draft #{draft.id}** · language **{as_text(draft.language or '?')}** · grounded: "
                 f"{'yes' if draft.grounded else 'no'}"]  # fmt: skip
        if not draft.sources:
            lines.append("*No sources.*")
        for s in draft.sources:
            lines.append(f"- **{as_text(str(s.get('question', '')))}** ({as_text(str(s.get('faq_id', '')))}, "
                         f"score {float(s.get('score', 0)):.2f})  \n  {as_text(str(s.get('answer', '')))}")  # fmt: skip
        return "\n".join(lines)

    def stale_notice(self, ref: str) -> str:
        """Why the draft on screen can no longer be sent (it was reviewed meanwhile)."""
        parsed = parse_ref(ref)
        if parsed is None:
            return ""
        try:
            draft = self.desk.draft(parsed[0])
        except DeskError:
            return f"⚠ Draft #{parsed[0]} no longer exists."
        who = f" by {as_text(draft.agent)}" if draft.agent else ""
        return (f"⚠ **Draft #{draft.id} was {draft.state}{who} meanwhile**: nothing you click here will send it. "
                "Press **Refresh** to see where the conversation stands.")  # fmt: skip

    def pane(self, conversation_id: str | None, agent: str | None, ref: str | None, signature: str | None,
             force: bool = False) -> tuple[Any, ...]:  # fmt: skip
        """The pane's outputs: header, typing, chat, review (visibility), draft details, draft text, draft
        reference, signature. Unchanged parts are skipped; without `force` a draft on screen is never replaced."""
        import gradio as gr

        skip = gr.skip()
        if not conversation_id:
            return ("Select a conversation in the inbox.", "", [], gr.update(visible=False), "", "", NO_DRAFT, "")
        try:
            view = self.desk.view(conversation_id, agent)
        except DeskError as exc:
            return (f"⚠ {as_text(str(exc))}", "", [], gr.update(visible=False), "", "", NO_DRAFT, "")
        new_signature = repr(view.signature)
        if not force and new_signature == signature:
            return (skip,) * 8
        head, typing, chat = self.header(view), self.typing_line(view), self.history(view)
        current = draft_ref(view)
        if force or not ref:  # nothing on screen yet (or the agent asked): show the conversation's draft, if any
            if view.draft is None:
                return head, typing, chat, gr.update(visible=False), "", "", NO_DRAFT, new_signature
            return (head, typing, chat, gr.update(visible=True), self.sources(view), view.draft.text, current,
                    new_signature)  # fmt: skip
        if current == ref:  # the same draft: keep the agent's edits in the box
            return head, typing, chat, skip, skip, skip, skip, new_signature
        return head, typing, chat, skip, self.stale_notice(ref), skip, skip, new_signature

    def tick(self, filter_label: str | None, search: str | None, selected: str | None, ref: str | None,
             signature: str | None, agent: str | None) -> tuple[Any, ...]:  # fmt: skip
        """Timer: the inbox, the summary and the pane's changes."""
        return (*self.inbox(filter_label, search, selected), *self.pane(selected, agent, ref, signature))

    # -- actions ----------------------------------------------------------------------------------------------
    def _do(self, action: Any, done: str) -> str:
        try:
            action()
        except DeskError as exc:
            return f"⚠ {as_text(str(exc))}"
        except Exception as exc:  # noqa: BLE001 - a store refusal (closed, already reviewed) is shown, not raised
            from chatbot.store import StoreError

            if not isinstance(exc, StoreError):
                raise
            return f"⚠ Not done: {as_text(str(exc))}"
        return done

    def assign(self, conversation_id: str | None, agent: str) -> str:
        if not conversation_id:
            return "Select a conversation first."
        return self._do(lambda: self.desk.assign(conversation_id, agent), f"Assigned to {as_text(agent)}.")

    def reply(self, conversation_id: str | None, text: str | None, agent: str) -> tuple[str, str]:
        """Send the agent's message; returns the status and what stays in the reply box."""
        if not conversation_id:
            return "Select a conversation first.", text or ""
        status = self._do(lambda: self.desk.reply(conversation_id, agent, text or ""), f"Sent by {as_text(agent)}.")
        return status, "" if status.startswith("Sent") else text or ""

    def typing(self, conversation_id: str | None, agent: str) -> None:
        if conversation_id:
            self.desk.typing(conversation_id, agent)

    def hand_back(self, conversation_id: str | None, agent: str) -> str:
        if not conversation_id:
            return "Select a conversation first."
        return self._do(lambda: self.desk.hand_back(conversation_id, agent),
                        "Handed back to the bot; the customer was told.")  # fmt: skip

    def resolve(self, conversation_id: str | None, agent: str) -> str:
        if not conversation_id:
            return "Select a conversation first."
        return self._do(lambda: self.desk.resolve(conversation_id, agent),
                        "Resolved; the customer got a closing message.")  # fmt: skip

    def reopen(self, conversation_id: str | None, agent: str) -> str:
        if not conversation_id:
            return "Select a conversation first."
        return self._do(lambda: self.desk.reopen(conversation_id, agent), f"Reopened and assigned to {as_text(agent)}.")

    def approve(self, ref: str | None, text: str | None, agent: str, edited: bool) -> str:
        """Send the draft on screen (`ref`) as is, or the agent's edit of it."""
        parsed = parse_ref(ref)
        if parsed is None:
            return "No draft on screen: select a conversation with a draft first."
        draft_id, version = parsed
        return self._do(lambda: self.desk.approve(draft_id, version, agent, text if edited else None),
                        f"Draft #{draft_id} sent by {as_text(agent)}.")  # fmt: skip

    def reject(self, ref: str | None, reason: str | None, agent: str) -> str:
        parsed = parse_ref(ref)
        if parsed is None:
            return "No draft on screen: select a conversation with a draft first."
        draft_id, version = parsed
        return self._do(lambda: self.desk.reject(draft_id, version, agent, reason or ""),
                        f"Draft #{draft_id} rejected; the conversation waits for a person.")  # fmt: skip

    # -- auto-sent replies ------------------------------------------------------------------------------------
    def recent_choices(self, limit: int = 30) -> list[tuple[str, int]]:
        """Recently auto-sent bot replies, newest first."""
        recent = self.engine.store.recent_auto_sent(limit)
        return [(f"#{m.id} · {_age(m.created_at)} · {_preview(m.text)}", m.id) for m in recent]

    def refresh_recent(self, recent: int | None) -> Any:
        import gradio as gr

        choices = self.recent_choices()
        values = [v for _, v in choices]
        return gr.update(choices=choices, value=recent if recent in values else None)

    def show_sent(self, message_id: int | None) -> tuple[list, str]:
        from chatbot.store import NotFoundError

        if message_id is None:
            return [], ""
        try:
            message = self.engine.store.message(int(message_id))
        except NotFoundError:
            return [], ""
        context = [m for m in self.engine.store.messages(message.conversation_id) if m.id <= message.id]
        return console_history(context), message.text

    def rate_sent(self, message_id: int | None, up: bool, agent: str) -> str:
        if message_id is None:
            return "Select a reply first."
        self.engine.store.add_feedback(int(message_id), up, f"agent {agent}")
        return f"Reply #{message_id} rated {'👍' if up else '👎'}."

    def correct_sent(self, message_id: int | None, text: str | None, agent: str) -> str:
        """Send a corrected reply to the customer; it joins the training export as an agent-written reply."""
        if message_id is None:
            return "Select a reply first."
        if not (text or "").strip():
            return "Write the corrected reply first."
        message = self.engine.store.message(int(message_id))
        if text.strip() == message.text.strip():
            return "The text is unchanged: edit it before sending a correction."
        status = self._do(lambda: self.engine.store.agent_reply(message.conversation_id, agent, text.strip()), "")
        if status:
            return status
        self.engine.store.add_feedback(int(message_id), False, f"corrected by agent {agent}")
        return f"Correction of reply #{message_id} sent to the customer by {as_text(agent)}."


def build(engine: Any) -> Any:
    """The agent console as Gradio Blocks."""
    import gradio as gr

    console = AgentConsole(engine)
    with gr.Blocks(title=TITLE) as demo:
        gr.HTML(CSS, padding=False)
        with gr.Row():
            gr.Markdown("## Agent console")
            who = gr.Markdown("", elem_id="agent-who")
            gr.HTML('<a href="/logout">Sign out</a>', elem_id="logout")
        summary = gr.Markdown("", elem_id="agent-summary")
        timer = gr.Timer(LIVE_S)
        selected = gr.Textbox(visible=False, elem_id="selected-conversation")
        ref = gr.Textbox(visible=False, elem_id="draft-ref")
        signature = gr.State("")
        with gr.Tab("Inbox", elem_id="tab-inbox"), gr.Row():
            with gr.Column(scale=2, min_width=320):
                state_filter = gr.Radio(list(FILTERS), value="All", label="Show", elem_id="inbox-filter")
                search = gr.Textbox(placeholder="Search the messages…", show_label=False, elem_id="inbox-search")
                inbox = gr.Radio(choices=[], label="Conversations (waiting first, then latest activity)",
                                 elem_id="inbox")  # fmt: skip
            with gr.Column(scale=3):
                header = gr.Markdown("Select a conversation in the inbox.", elem_id="pane-header")
                with gr.Row():
                    assign = gr.Button("Assign to me", size="sm", elem_id="assign")
                    back = gr.Button("Hand back to the bot", size="sm", elem_id="hand-back")
                    resolve = gr.Button("Resolve", size="sm", elem_id="resolve")
                    reopen = gr.Button("Reopen", size="sm", elem_id="reopen")
                    refresh = gr.Button("↻ Refresh", size="sm", elem_id="pane-refresh")
                chat = gr.Chatbot(label="Conversation", height=360, latex_delimiters=[], sanitize_html=True,
                                  allow_tags=False, feedback_options=None, elem_id="pane-chat")  # fmt: skip
                typing = gr.Markdown("", elem_id="pane-typing")
                with gr.Group(visible=False, elem_id="review") as review:
                    with gr.Row():
                        with gr.Column(scale=3):
                            draft_text = gr.Textbox(label="Draft (edit before sending if needed)", lines=5,
                                                    elem_id="draft-text")  # fmt: skip
                        with gr.Column(scale=2):
                            draft_info = gr.Markdown("", elem_id="draft-info")
                    with gr.Row():
                        approve = gr.Button("Approve and send", variant="primary", elem_id="approve")
                        send_edit = gr.Button("Send edited text", elem_id="send-edited")
                    with gr.Row():
                        reason = gr.Textbox(label="Reason for rejecting", scale=3, elem_id="reject-reason")
                        reject = gr.Button("Reject (hand to a person)", variant="stop", scale=1, elem_id="reject")
                reply_text = gr.Textbox(label="Your reply to the customer", lines=3, elem_id="reply-text")
                send = gr.Button("Send reply", variant="primary", elem_id="reply-send")
                status = gr.Markdown("", elem_id="desk-status")
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

        pane_out = [header, typing, chat, review, draft_info, draft_text, ref, signature]
        live_in = [state_filter, search, selected, ref, signature]

        def whoami(request: gr.Request) -> str:
            return f"Signed in as **{as_text(agent_name(request))}**"

        def tick(filter_label, text, conversation_id, shown, sig, request: gr.Request):
            return console.tick(filter_label, text, conversation_id, shown, sig, agent_name(request))

        def show_list(filter_label, text, conversation_id):
            return console.inbox(filter_label, text, conversation_id)

        def open_conversation(conversation_id, request: gr.Request):
            return (conversation_id or "", "", *console.pane(conversation_id, agent_name(request), NO_DRAFT, "", True))

        def redraw(conversation_id, request: gr.Request):
            return console.pane(conversation_id, agent_name(request), NO_DRAFT, "", force=True)

        demo.load(whoami, None, who, api_name="whoami")
        demo.load(tick, live_in, [inbox, summary, *pane_out], api_name="inbox")
        timer.tick(tick, live_in, [inbox, summary, *pane_out], show_progress="hidden", api_visibility="private")
        summary.change(None, [summary], None, js=TITLE_JS)
        for trigger in (state_filter.change, search.submit):
            trigger(show_list, [state_filter, search, selected], [inbox, summary], show_progress="hidden",
                    api_visibility="private")  # fmt: skip
        # `input` fires on the agent's click only, never when the timer redraws the list
        pick = inbox.input(lambda conversation_id: conversation_id or "", [inbox], [selected], queue=False,
                           show_progress="hidden", api_visibility="private")  # fmt: skip
        pick.then(open_conversation, [selected], [selected, status, *pane_out], api_name="open")
        refresh.click(redraw, [selected], pane_out, api_visibility="private")

        def do_typing(conversation_id, request: gr.Request):
            console.typing(conversation_id, agent_name(request))

        reply_text.input(do_typing, [selected], None, queue=False, show_progress="hidden", api_visibility="private")

        def do_assign(conversation_id, request: gr.Request):
            return console.assign(conversation_id, agent_name(request))

        def do_reply(conversation_id, text, request: gr.Request):
            return console.reply(conversation_id, text, agent_name(request))

        def do_hand_back(conversation_id, request: gr.Request):
            return console.hand_back(conversation_id, agent_name(request))

        def do_resolve(conversation_id, request: gr.Request):
            return console.resolve(conversation_id, agent_name(request))

        def do_reopen(conversation_id, request: gr.Request):
            return console.reopen(conversation_id, agent_name(request))

        def do_approve(shown, request: gr.Request):
            return console.approve(shown, None, agent_name(request), edited=False)

        def do_send_edit(shown, text, request: gr.Request):
            return console.approve(shown, text, agent_name(request), edited=True)

        def do_reject(shown, why, request: gr.Request):
            return console.reject(shown, why, agent_name(request))

        for event in (
            assign.click(do_assign, [selected], [status], api_name="assign"),
            send.click(do_reply, [selected, reply_text], [status, reply_text], api_name="reply"),
            back.click(do_hand_back, [selected], [status], api_name="hand_back"),
            resolve.click(do_resolve, [selected], [status], api_name="resolve"),
            reopen.click(do_reopen, [selected], [status], api_name="reopen"),
            approve.click(do_approve, [ref], [status], api_name="approve"),
            send_edit.click(do_send_edit, [ref, draft_text], [status], api_name="send_edited"),
            reject.click(do_reject, [ref, reason], [status], api_name="reject"),
        ):
            event.then(redraw, [selected], pane_out, api_visibility="private", show_progress="hidden").then(
                show_list,
                [state_filter, search, selected],
                [inbox, summary],
                api_visibility="private",
                show_progress="hidden",
            )

        def do_good(message_id, request: gr.Request):
            return console.rate_sent(message_id, True, agent_name(request))

        def do_bad(message_id, request: gr.Request):
            return console.rate_sent(message_id, False, agent_name(request))

        def do_correct(message_id, text, request: gr.Request):
            return console.correct_sent(message_id, text, agent_name(request))

        demo.load(console.refresh_recent, [recent], [recent], api_visibility="private")
        recent.focus(console.refresh_recent, [recent], [recent], api_visibility="private")
        recent.change(console.show_sent, [recent], [recent_chat, correction], api_name="show_sent")
        for event in (
            good.click(do_good, [recent], [recent_status], api_name="rate_good"),
            bad.click(do_bad, [recent], [recent_status], api_name="rate_bad"),
            correct.click(do_correct, [recent, correction], [recent_status], api_name="correct"),
        ):
            event.then(console.refresh_recent, [recent], [recent], api_visibility="private")
    demo.console = console
    return demo

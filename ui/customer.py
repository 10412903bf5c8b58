"""The customer chat at `/`: streamed replies with their sources, hold and handoff states, agent replies arriving
by a timer, "talk to a person", thumbs, stop, and the conversation kept in the browser across reloads."""

# No `from __future__ import annotations`: Gradio reads the `gr.Request` hints of the handlers at runtime.
import logging
import threading
from collections.abc import Iterator
from typing import Any

from ui.render import Rendered, as_text, render_messages

log = logging.getLogger(__name__)

POLL_S = 2.0
"""How often an open chat page looks for agent replies."""
STORAGE_KEY = "support-chat-conversation"
"""The browser's local-storage key for the conversation token (`<id>:<secret>`)."""


def conversation_token(store: Any, conversation_id: str) -> str:
    """What the chat page keeps and sends back: the conversation's id and its secret, `<id>:<secret>`."""
    return f"{conversation_id}:{store.conversation_secret(conversation_id)}"


def conversation_of(store: Any, token: str | None) -> str | None:
    """The conversation id in `token` when its secret is right, else None (an id alone opens nothing)."""
    conversation_id, _, secret = (token or "").partition(":")
    return conversation_id if store.check_secret(conversation_id, secret) else None


class CustomerChat:
    """The chat page's handlers, plain methods over the engine (the Gradio wiring is in `build`)."""

    def __init__(self, engine: Any, active: Any = None):
        self.engine = engine
        self.active = active
        self._cancels: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    # -- helpers ----------------------------------------------------------------------------------------------
    def _lookup(self, faq_id: str) -> Any:
        try:
            return self.engine.kb.entry(faq_id)
        except Exception:  # noqa: BLE001 - a source from a version no longer loaded just is not shown
            return None

    def render(self, conversation_id: str | None) -> Rendered:
        """The conversation from the store (empty for an unknown or missing id)."""
        if not conversation_id:
            return Rendered()
        from chatbot.plan import FACT_SOURCE_RATIO
        from chatbot.store import NotFoundError

        try:
            return render_messages(self.engine.store.messages(conversation_id), self._lookup, FACT_SOURCE_RATIO)
        except NotFoundError:
            return Rendered()

    def _known(self, token: str | None) -> str | None:
        """The open conversation `token` proves access to, else None."""
        from chatbot.store import NotFoundError

        conversation_id = conversation_of(self.engine.store, token)
        if not conversation_id:
            return None
        try:
            conversation = self.engine.store.get_conversation(conversation_id)
        except NotFoundError:
            return None
        return None if conversation.status == "closed" else conversation_id

    # -- handlers ---------------------------------------------------------------------------------------------
    def _token(self, conversation_id: str) -> str:
        return conversation_token(self.engine.store, conversation_id) if conversation_id else ""

    def restore(self, token: str | None) -> tuple[list, str, list, int]:
        """Page load: show the conversation kept in the browser (its token), if the server still knows it."""
        conversation_id = self._known(token) or ""
        view = self.render(conversation_id)
        return view.history, self._token(conversation_id), view.message_ids, view.last_id

    def send(self, text: str, token: str | None) -> Iterator[tuple[list, str, list, int, str]]:
        """Stream the reply to `text`: yields `(history, conversation token, message_ids, last_id, textbox)`."""
        import gradio as gr

        from chatbot.engine import InputError

        conversation_id = self._known(token) or self.engine.start_conversation(channel="web")
        token = self._token(conversation_id)
        view = self.render(conversation_id)
        cancel = threading.Event()
        try:
            stream = self.engine.stream(conversation_id, text or "", cancel=cancel)
        except InputError as exc:  # the customer's mistake, not the server's: one log line, no traceback
            log.info("message refused (%s): %s", exc.code, exc)
            raise gr.Error(str(exc), title="Message not sent", print_exception=False) from None
        with self._lock:
            self._cancels[conversation_id] = cancel
        history = [*view.history, {"role": "user", "content": as_text(text.strip())}]
        ids = [*view.message_ids, None]
        shown = ""
        yield [*history, {"role": "assistant", "content": "…"}], token, ids, view.last_id, ""
        try:
            if self.active is not None:
                self.active.__enter__()
            for piece in stream:
                shown += piece
                yield [*history, {"role": "assistant", "content": as_text(shown)}], token, ids, view.last_id, ""
        finally:
            if self.active is not None:
                self.active.__exit__(None, None, None)
            if not stream.done:
                stream.close()
            with self._lock:
                self._cancels.pop(conversation_id, None)
        final = self.render(conversation_id)  # the recorded reply: fallback text, sources, hold state
        yield final.history, token, final.message_ids, final.last_id, ""

    def stop(self, token: str | None) -> None:
        """The stop button: cancel the reply being generated (what was shown is kept)."""
        conversation_id = conversation_of(self.engine.store, token)
        with self._lock:
            cancel = self._cancels.get(conversation_id) if conversation_id else None
        if cancel is not None:
            cancel.set()

    def talk_to_person(self, token: str | None) -> tuple[list, str, list, int]:
        """Hand the conversation to a person; the notice appears in the chat."""
        conversation_id = self._known(token) or self.engine.start_conversation(channel="web")
        self.engine.request_human(conversation_id)
        view = self.render(conversation_id)
        return view.history, self._token(conversation_id), view.message_ids, view.last_id

    def poll(self, token: str | None, last_id: int | None) -> tuple[Any, Any, Any]:
        """Timer: re-render when the store has newer messages (an agent's reply or an approved draft)."""
        import gradio as gr

        conversation_id = conversation_of(self.engine.store, token)
        if not conversation_id:
            return gr.skip(), gr.skip(), gr.skip()
        from chatbot.store import NotFoundError

        try:
            newer = self.engine.store.messages(conversation_id, after_id=last_id or 0)
        except NotFoundError:
            return gr.skip(), gr.skip(), gr.skip()
        if not newer:
            return gr.skip(), gr.skip(), gr.skip()
        view = self.render(conversation_id)
        return view.history, view.message_ids, view.last_id

    def rate(self, message_ids: list, index: Any, liked: Any) -> str:
        """A thumb on a bot reply (or on one of its sources: that rates the reply)."""
        position = index[0] if isinstance(index, list | tuple) else index
        if not isinstance(position, int) or not 0 <= position < len(message_ids or []):
            return ""
        message_id = message_ids[position]
        if message_id is None:
            return "Only the bot's and the team's replies can be rated."
        if liked is None or liked == "":  # the thumb was taken back: nothing to record
            return ""
        up = liked is True or str(liked).lower() in ("like", "true")
        self.engine.store.add_feedback(message_id, up)
        return "Thanks for the feedback!"


CSS = """
#customer-chat .message-content, #customer-chat .prose, #customer-chat p { unicode-bidi: plaintext;
  text-align: start; }
#customer-chat { font-family: system-ui, 'Noto Sans', 'Noto Sans CJK SC', 'Noto Sans Arabic', sans-serif; }
footer { display: none !important; }
"""


def build(engine: Any, active: Any = None, concurrency: int = 8, company: str = "Acme") -> Any:
    """The customer chat page as Gradio Blocks."""
    import gradio as gr

    chat = CustomerChat(engine, active)
    with gr.Blocks(title=f"{company} support") as demo:
        gr.Markdown(f"## {as_text(company)} support\nAsk a question about orders, delivery, payments or your account.")
        conversation = gr.BrowserState("", storage_key=STORAGE_KEY)
        message_ids = gr.State([])
        last_id = gr.State(0)
        chatbot = gr.Chatbot(
            elem_id="customer-chat", label="Chat", height=520, latex_delimiters=[], sanitize_html=True,
            allow_tags=False, feedback_options=("Like", "Dislike"), buttons=["copy"],
            placeholder="Type your question below.",
        )  # fmt: skip
        with gr.Row():
            box = gr.Textbox(placeholder="Type your message…", show_label=False, scale=6, elem_id="customer-input",
                             max_lines=6, autofocus=True)  # fmt: skip
            send = gr.Button("Send", variant="primary", scale=1, elem_id="send-button")
            stop = gr.Button("Stop", variant="stop", scale=1, elem_id="stop-button", visible=False)
        with gr.Row():
            person = gr.Button("Talk to a person", size="sm", elem_id="talk-to-person")
            thanks = gr.Markdown("", elem_id="feedback-note")
        timer = gr.Timer(POLL_S)

        demo.load(chat.restore, [conversation], [chatbot, conversation, message_ids, last_id], queue=False,
                  api_name="restore")  # fmt: skip

        def start() -> tuple[Any, Any]:
            return gr.update(visible=False), gr.update(visible=True)

        def end() -> tuple[Any, Any]:
            return gr.update(visible=True), gr.update(visible=False)

        outputs = [chatbot, conversation, message_ids, last_id, box]
        events = []
        for trigger in (box.submit, send.click):
            shown = trigger(start, None, [send, stop], queue=False, api_visibility="private")
            run = shown.then(chat.send, [box, conversation], outputs, concurrency_limit=concurrency,
                             concurrency_id="customer-send", api_name="send" if not events else "send_click",
                             api_visibility="public" if not events else "private", show_progress="hidden")  # fmt: skip
            run.then(end, None, [send, stop], queue=False, api_visibility="private")
            events.append(run)
        stop.click(chat.stop, [conversation], None, queue=False, api_name="stop")
        person.click(chat.talk_to_person, [conversation], [chatbot, conversation, message_ids, last_id],
                     api_name="talk_to_person", concurrency_limit=concurrency)  # fmt: skip
        timer.tick(chat.poll, [conversation, last_id], [chatbot, message_ids, last_id], show_progress="hidden",
                   api_name="poll", concurrency_limit=concurrency * 2)  # fmt: skip

        def on_like(ids: list, data: gr.LikeData) -> str:
            return chat.rate(ids, data.index, data.liked)

        chatbot.like(on_like, [message_ids], [thanks], api_visibility="private", queue=False)
    demo.chat_handlers = chat  # for tests and the API
    return demo

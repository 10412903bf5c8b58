"""The customer chat at `/` (and, framed, at `/widget/`): streamed replies with their sources, hold and handoff
states, team replies arriving by a timer with a badge, "talk to a person", "new conversation", thumbs on answers,
stop (the button or Esc), page texts in the conversation's language, and the conversation kept in the browser."""

# No `from __future__ import annotations`: Gradio reads the `gr.Request` hints of the handlers at runtime.
import json
import logging
import threading
from collections.abc import Iterator
from typing import Any

from ui.i18n import REFUSED, TABLES, page_language, supported, text
from ui.render import Rendered, as_markdown, as_text, render_messages

log = logging.getLogger(__name__)

POLL_S = 1.0
"""How often an open chat page looks for agent replies (the desk promises they show within 2 s)."""
STORAGE_KEY = "support-chat-conversation"
"""The browser's local-storage key for the conversation token (`<id>:<secret>`) of the chat page."""
WIDGET_STORAGE_KEY = "support-widget-conversation"
"""The same for the chat framed by the website widget: a conversation of its own."""
WIDGET_HEIGHT = 380
"""The chat's height in the widget's frame (pixels), leaving room for the message box and buttons."""
MAX_TYPED = 200
"""At most this many of the customer's messages are kept as typed for the page session (the newest)."""


def conversation_token(store: Any, conversation_id: str) -> str:
    """What the chat page keeps and sends back: the conversation's id and its secret, `<id>:<secret>`."""
    return f"{conversation_id}:{store.conversation_secret(conversation_id)}"


def conversation_of(store: Any, token: str | None) -> str | None:
    """The conversation id in `token` when its secret is right, else None (an id alone opens nothing)."""
    conversation_id, _, secret = (token or "").partition(":")
    return conversation_id if store.check_secret(conversation_id, secret) else None


def _asked(request: Any) -> tuple[str | None, str | None]:
    """The page language a request asks for: `?lang=` and the `Accept-Language` header."""
    if request is None:
        return None, None
    return request.query_params.get("lang"), request.headers.get("accept-language")


class CustomerChat:
    """The chat page's handlers, plain methods over the engine (the Gradio wiring is in `build`).

    `typed` (a per-page-session dict, message id -> the customer's text as typed) lets the page show the customer's
    own words while the store keeps the masked copy; it is never written anywhere.
    """

    def __init__(self, engine: Any, active: Any = None, company: str = "Acme"):
        self.engine = engine
        self.active = active
        self.company = company
        self._cancels: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        self._pages: dict[str, str] = {}
        """Gradio session -> the conversation its first message started, while that reply streams (the page has no
        token yet: a "talk to a person" clicked meanwhile must land in the same conversation)."""

    # -- helpers ----------------------------------------------------------------------------------------------
    def _lookup(self, faq_id: str) -> Any:
        try:
            return self.engine.kb.entry(faq_id)
        except Exception:  # noqa: BLE001 - a source from a version no longer loaded just is not shown
            return None

    def _conversation(self, conversation_id: str | None) -> Any:
        from chatbot.store import NotFoundError

        if not conversation_id:
            return None
        try:
            return self.engine.store.get_conversation(conversation_id)
        except NotFoundError:
            return None

    def language(self, conversation_id: str | None, request: Any = None) -> str:
        """The page's language: the conversation's, else `?lang=`, else the browser's, else English."""
        conversation = self._conversation(conversation_id)
        return page_language(conversation.language if conversation else None, *_asked(request))

    def render(self, conversation_id: str | None, typed: dict | None = None, arrived_after: int | None = None,
               language: str | None = None) -> Rendered:  # fmt: skip
        """The conversation from the store (empty for an unknown or missing id)."""
        from chatbot.plan import FACT_SOURCE_RATIO
        from chatbot.store import NotFoundError

        if not conversation_id:
            return Rendered()
        store = self.engine.store
        try:
            messages = store.messages(conversation_id)
        except NotFoundError:
            return Rendered()
        return render_messages(messages, self._lookup, FACT_SOURCE_RATIO, typed=typed,
                               ratings=store.customer_ratings(conversation_id), arrived_after=arrived_after,
                               language=language or self.language(conversation_id))  # fmt: skip

    def _known(self, token: str | None) -> str | None:
        """The open conversation `token` proves access to, else None."""
        conversation = self._conversation(conversation_of(self.engine.store, token))
        return None if conversation is None or conversation.status == "closed" else conversation.id

    def _start(self, request: Any) -> str:
        """A new conversation, in the language the page was asked for (if the pages speak it)."""
        conversation_id = self.engine.start_conversation(channel="web")
        asked, accept = _asked(request)
        if supported(asked) or supported(accept):
            self.engine.store.set_language(conversation_id, page_language(None, asked, accept))
        return conversation_id

    def _starting(self, request: Any) -> str | None:
        """The conversation this page's first message is being answered in, while its token is on the way."""
        session = getattr(request, "session_hash", None)
        with self._lock:
            return self._pages.get(session) if session else None

    def _token(self, conversation_id: str) -> str:
        return conversation_token(self.engine.store, conversation_id) if conversation_id else ""

    # -- handlers ---------------------------------------------------------------------------------------------
    def restore(self, token: str | None, typed: dict | None = None, request: Any = None) -> tuple[list, str, list, int]:
        """Page load: show the conversation kept in the browser (its token), if the server still knows it."""
        conversation_id = self._known(token) or ""
        view = self.render(conversation_id, typed, language=self.language(conversation_id, request))
        return view.history, self._token(conversation_id), view.message_ids, view.last_id

    def send(self, message: str, token: str | None, typed: dict | None = None, request: Any = None
             ) -> Iterator[tuple[list, str, list, int, str, dict]]:  # fmt: skip
        """Stream the reply to `message`: yields `(chat, conversation token, message_ids, last_id, textbox, typed)`.

        A refused message raises `gr.Error` before anything is stored (the textbox keeps it for correcting)."""
        import gradio as gr

        from chatbot.engine import InputError

        typed = dict(typed or {})
        conversation_id = self._known(token)
        session = None if conversation_id else getattr(request, "session_hash", None)
        conversation_id = conversation_id or self._start(request)
        language = self.language(conversation_id, request)
        token = self._token(conversation_id)
        view = self.render(conversation_id, typed, language=language)
        cancel = threading.Event()
        try:
            stream = self.engine.stream(conversation_id, message or "", cancel=cancel)
        except InputError as exc:  # the customer's mistake, not the server's: one log line, no traceback
            log.info("message refused (%s): %s", exc.code, exc)
            limit = str(self.engine.config.limits.max_message_chars)
            shown = text(REFUSED[exc.code], language, limit=limit) if exc.code in REFUSED else str(exc)
            raise gr.Error(shown, title=text("not_sent", language), print_exception=False) from None
        with self._lock:
            self._cancels[conversation_id] = cancel
            if session:
                self._pages[session] = conversation_id
        history = [*view.history, {"role": "user", "content": as_text(message.strip())}]
        ids = [*view.message_ids, None]
        shown = ""
        yield [*history, {"role": "assistant", "content": "…"}], token, ids, view.last_id, "", typed
        try:
            if self.active is not None:
                self.active.__enter__()
            for piece in stream:
                shown += piece
                growing = {"role": "assistant", "content": as_markdown(shown)}
                yield [*history, growing], token, ids, view.last_id, "", typed
        finally:
            if self.active is not None:
                self.active.__exit__(None, None, None)
            if not stream.done:
                stream.close()
            with self._lock:
                self._cancels.pop(conversation_id, None)
                if session and self._pages.get(session) == conversation_id:
                    del self._pages[session]
        mine = [m.id for m in self.engine.store.messages(conversation_id, after_id=view.last_id) if m.role == "user"]
        if mine:
            typed[mine[0]] = message.strip()
            typed = dict(sorted(typed.items())[-MAX_TYPED:])
        # the recorded reply (sources, hold state), in the language the conversation has now: a customer who
        # switched languages gets every source label in the new one, like the page's texts
        final = self.render(conversation_id, typed, language=self.language(conversation_id, request))
        yield final.history, token, final.message_ids, final.last_id, "", typed

    def stop(self, token: str | None) -> None:
        """The stop button (or Esc): cancel the reply being generated (what was shown is kept)."""
        conversation_id = conversation_of(self.engine.store, token)
        with self._lock:
            cancel = self._cancels.get(conversation_id) if conversation_id else None
        if cancel is not None:
            cancel.set()

    def talk_to_person(self, token: str | None, typed: dict | None = None, request: Any = None
                       ) -> tuple[list, str, list, int]:  # fmt: skip
        """Hand the conversation to a person; the notice appears in the chat."""
        conversation_id = self._known(token) or self._starting(request) or self._start(request)
        self.engine.request_human(conversation_id)
        view = self.render(conversation_id, typed, language=self.language(conversation_id, request))
        return view.history, self._token(conversation_id), view.message_ids, view.last_id

    def new_conversation(self, token: str | None, request: Any = None) -> tuple[list, str, list, int, str, dict, str]:
        """Forget the conversation on this page (a reply still streaming is stopped) and start afresh with the next
        message: `(chat, token, message_ids, last_id, textbox, typed, feedback note)`. The old conversation stays
        with the team as it is."""
        self.stop(token)
        session = getattr(request, "session_hash", None)
        with self._lock:
            self._pages.pop(session, None)
        return [], "", [], 0, "", {}, ""

    def thumbs(self, token: str | None) -> Any:
        """The thumbs the customer gave in the conversation, for the chat to show them lit (after a reload)."""
        import gradio as gr

        return gr.update(feedback_value=self.render(conversation_of(self.engine.store, token)).feedback)

    def poll(self, token: str | None, last_id: int | None, typed: dict | None = None) -> tuple[Any, Any, Any]:
        """Timer: re-render when the store has newer messages (an agent's reply or an approved draft); team replies
        newer than `last_id` are marked so the page scrolls to them and shows its badge."""
        import gradio as gr

        from chatbot.store import NotFoundError

        conversation_id = conversation_of(self.engine.store, token)
        if not conversation_id:
            return gr.skip(), gr.skip(), gr.skip()
        try:
            newer = self.engine.store.messages(conversation_id, after_id=last_id or 0)
        except NotFoundError:
            return gr.skip(), gr.skip(), gr.skip()
        if not newer:
            return gr.skip(), gr.skip(), gr.skip()
        view = self.render(conversation_id, typed, arrived_after=last_id or 0)
        return view.history, view.message_ids, view.last_id

    def rate(self, message_ids: list, index: Any, liked: Any, language: str = "en") -> str:
        """A thumb on a bot or team answer; taking it back (`liked` None or "") removes it. Rows that cannot be rated
        (the customer's own, notices) get a short explanation; the page shows no thumbs there in the first place."""
        position = index[0] if isinstance(index, list | tuple) else index
        if not isinstance(position, int) or not 0 <= position < len(message_ids or []):
            return ""
        message_id = message_ids[position]
        if message_id is None:
            return text("not_rated", language)
        taken_back = liked is None or liked == ""
        up = None if taken_back else liked is True or str(liked).lower() in ("like", "true")
        self.engine.store.rate_as_customer(message_id, up)
        return "" if taken_back else text("thanks", language)

    def labels(self, token: str | None, request: Any = None) -> tuple[Any, ...]:
        """The page's fixed texts in its language (see `language`), for the components `build` lists."""
        import gradio as gr

        language = self.language(conversation_of(self.engine.store, token), request)

        def t(key: str) -> str:
            return text(key, language, company=self.company)

        return (
            gr.update(value=f"## {as_text(t('title'))}\n{as_text(t('intro'))}"),
            gr.update(label=t("chat"), placeholder=as_text(t("empty"))),
            gr.update(label=t("message"), placeholder=t("placeholder")),
            gr.update(value=t("send")),
            gr.update(value=t("stop")),
            gr.update(value=t("person")),
            gr.update(value=t("new")),
            gr.update(value=badge_html(t("arrived"))),
            language,
        )


def badge_html(label: str) -> str:
    """The hidden badge the page's script shows when a team reply arrives (a click scrolls to the reply)."""
    import html

    return f'<button id="reply-badge" type="button" hidden aria-live="assertive">🔔 {html.escape(label)}</button>'


CSS = """
#customer-chat .message-content, #customer-chat .prose, #customer-chat p { unicode-bidi: plaintext;
  text-align: start; }
#customer-chat { font-family: system-ui, 'Noto Sans', 'Noto Sans CJK SC', 'Noto Sans Arabic', sans-serif; }
/* thumbs only under answers; their labels are in the browser's language, so all buttons but the first (Copy) */
#customer-chat .message-row:not(:has(.chat-rateable)) + .message-buttons button:not(:first-of-type) { display: none; }
#reply-badge { position: sticky; top: 0; z-index: 5; border: 0; border-radius: 999px; padding: 6px 14px;
  background: #2563eb; color: #fff; font-weight: 600; cursor: pointer; box-shadow: 0 2px 8px rgb(0 0 0 / 20%); }
#reply-badge[hidden], #reply-badge-slot:has(#reply-badge[hidden]) { display: none; }
#customer-chat .message-row:has(.chat-arrived) .message { outline: 2px solid #2563eb; outline-offset: 2px; }
.widget-mode #chat-header { display: none; }
footer { display: none !important; }
"""

# Installed once per page: Esc stops a reply; a team reply that arrives (a `.chat-arrived` mark in the chat) is
# scrolled into view, shows the badge, marks the tab title and, in the widget's frame, tells the host page (the
# message carries no text, so any host may hear it).
PAGE_JS = """
() => {
  if (window.__supportChat) return;
  window.__supportChat = true;
  const embedded = window.self !== window.top;
  if (embedded) document.body.classList.add("widget-mode");
  const title = document.title;
  const badge = () => document.getElementById("reply-badge");
  const hide = () => { const b = badge(); if (b) b.hidden = true; document.title = title; };
  document.addEventListener("keydown", (e) => {
    const stop = document.getElementById("stop-button");
    if (e.key === "Escape" && stop && stop.offsetParent !== null) { e.preventDefault(); stop.click(); }
  }, true);
  document.addEventListener("click", (e) => {
    const b = badge();
    if (b && e.target.closest && e.target.closest("#reply-badge")) {
      const last = [...document.querySelectorAll("#customer-chat .chat-arrived")].pop();
      if (last) last.closest(".message-row").scrollIntoView({block: "center", behavior: "smooth"});
      hide();
    }
    if (e.target.closest && e.target.closest("#send-button, #new-conversation")) hide();
  });
  const look = () => {
    const fresh = [...document.querySelectorAll("#customer-chat .chat-arrived:not([data-seen])")];
    if (!fresh.length) return;
    fresh.forEach((m) => m.setAttribute("data-seen", "1"));
    fresh[fresh.length - 1].closest(".message-row").scrollIntoView({block: "center", behavior: "smooth"});
    const b = badge();
    if (b) b.hidden = false;
    if (document.hidden || embedded) document.title = "(1) " + title;
    if (embedded) window.parent.postMessage({type: "support-chat", event: "reply-arrived"}, "*");
  };
  new MutationObserver(look).observe(document.body, {childList: true, subtree: true});
}
"""


def build(engine: Any, active: Any = None, concurrency: int = 8, company: str = "Acme",
          storage_key: str = STORAGE_KEY, height: int = 520) -> Any:  # fmt: skip
    """The customer chat page as Gradio Blocks; `storage_key` names the browser storage of its conversation (the
    widget's frame has its own, `WIDGET_STORAGE_KEY`), `height` the chat's height in pixels."""
    import gradio as gr

    chat = CustomerChat(engine, active, company)
    # the browser tab's title and the page's lang attribute follow the page language, like its other texts
    titles = json.dumps({code: text("title", code, company=company) for code in TABLES}, ensure_ascii=False)
    title_js = f"(language) => {{ const t = {titles}; document.title = t[language] || t.en; "\
               "document.documentElement.lang = t[language] ? language : 'en'; }"  # fmt: skip
    with gr.Blocks(title=text("title", "en", company=company)) as demo:
        header = gr.Markdown(f"## {as_text(text('title', 'en', company=company))}\n{as_text(text('intro', 'en'))}",
                             elem_id="chat-header")  # fmt: skip
        badge = gr.HTML(badge_html(text("arrived", "en")), elem_id="reply-badge-slot", padding=False)
        conversation = gr.BrowserState("", storage_key=storage_key)
        typed = gr.State({})
        language = gr.State("en")
        page_lang = gr.Textbox("en", visible=False, elem_id="page-language")
        message_ids = gr.State([])
        last_id = gr.State(0)
        chatbot = gr.Chatbot(
            elem_id="customer-chat", label=text("chat", "en"), height=height, latex_delimiters=[], sanitize_html=True,
            allow_tags=False, feedback_options=("Like", "Dislike"), buttons=["copy"],
            placeholder=text("empty", "en"), group_consecutive_messages=False,
        )  # fmt: skip
        with gr.Row():
            box = gr.Textbox(label=text("message", "en"), placeholder=text("placeholder", "en"), show_label=False,
                             scale=6, elem_id="customer-input", max_lines=6, autofocus=True,
                             min_width=150)  # fmt: skip
            # narrow minimum widths: in the widget's 400-pixel frame the box, Send and the two buttons keep one line
            send = gr.Button(text("send", "en"), variant="primary", scale=1, elem_id="send-button", min_width=80)
            stop = gr.Button(text("stop", "en"), variant="stop", scale=1, elem_id="stop-button", visible=False,
                             min_width=80)  # fmt: skip
        with gr.Row():
            person = gr.Button(text("person", "en"), size="sm", elem_id="talk-to-person", min_width=120)
            new = gr.Button(text("new", "en"), size="sm", elem_id="new-conversation", min_width=120)
            thanks = gr.Markdown("", elem_id="feedback-note")
        timer = gr.Timer(POLL_S)
        labelled = [header, chatbot, box, send, stop, person, new, badge, language]

        # Gradio hands a handler the request only through a parameter hinted `gr.Request`
        def restore(token: str, kept: dict, request: gr.Request) -> tuple[list, str, list, int]:
            return chat.restore(token, kept, request)

        def send_message(message: str, token: str, kept: dict, request: gr.Request) -> Iterator[tuple]:
            yield from chat.send(message, token, kept, request)

        def talk_to_person(token: str, kept: dict, request: gr.Request) -> tuple[list, str, list, int]:
            return chat.talk_to_person(token, kept, request)

        def labels(token: str, request: gr.Request) -> tuple[Any, ...]:
            return chat.labels(token, request)

        def relabel(event: Any) -> None:
            relabelled = event.then(labels, [conversation], labelled, queue=False, api_visibility="private",
                                    show_progress="hidden")  # fmt: skip
            # a State's value stays on the server: the hidden box brings the language to the page's script
            shown = relabelled.then(lambda lang: lang, [language], [page_lang], queue=False, api_visibility="private",
                                    show_progress="hidden")  # fmt: skip
            shown.then(None, [page_lang], None, js=title_js, queue=False, api_visibility="private",
                       show_progress="hidden")  # fmt: skip

        loaded = demo.load(restore, [conversation, typed], [chatbot, conversation, message_ids, last_id],
                           queue=False, api_name="restore")  # fmt: skip
        relabel(loaded)
        loaded.then(chat.thumbs, [conversation], [chatbot], queue=False, api_visibility="private",
                    show_progress="hidden")  # fmt: skip
        demo.load(None, None, None, js=PAGE_JS)

        def start() -> tuple[Any, Any]:
            return gr.update(visible=False), gr.update(visible=True)

        def end() -> tuple[Any, Any]:
            return gr.update(visible=True), gr.update(visible=False)

        outputs = [chatbot, conversation, message_ids, last_id, box, typed]
        events = []
        for trigger in (box.submit, send.click):
            shown = trigger(start, None, [send, stop], queue=False, api_visibility="private")
            run = shown.then(send_message, [box, conversation, typed], outputs, concurrency_limit=concurrency,
                             concurrency_id="customer-send", api_name="send" if not events else "send_click",
                             api_visibility="public" if not events else "private", show_progress="hidden")  # fmt: skip
            # Send comes back whatever happened: a refused message, a server error, the queue being full
            run.then(end, None, [send, stop], queue=False, api_visibility="private")
            run.failure(end, None, [send, stop], queue=False, api_visibility="private")
            relabel(run)
            events.append(run)
        stop.click(chat.stop, [conversation], None, queue=False, api_name="stop")
        person_event = person.click(talk_to_person, [conversation, typed],
                                    [chatbot, conversation, message_ids, last_id], api_name="talk_to_person",
                                    concurrency_limit=concurrency)  # fmt: skip
        relabel(person_event)
        fresh = [chatbot, conversation, message_ids, last_id, box, typed, thanks]

        # the trash icon starts afresh too, not just a blank screen
        def new_conversation(token: str, request: gr.Request) -> tuple:
            return chat.new_conversation(token, request)

        for trigger, name in ((new.click, "new_conversation"), (chatbot.clear, None)):
            cleared = trigger(new_conversation, [conversation], fresh, queue=False, api_name=name,
                              api_visibility="public" if name else "private")  # fmt: skip
            cleared.then(end, None, [send, stop], queue=False, api_visibility="private")
            cleared.then(chat.thumbs, [conversation], [chatbot], queue=False, api_visibility="private")
            relabel(cleared)
        timer.tick(chat.poll, [conversation, last_id, typed], [chatbot, message_ids, last_id], show_progress="hidden",
                   api_name="poll", concurrency_limit=concurrency * 2)  # fmt: skip

        def on_like(ids: list, lang: str, data: gr.LikeData) -> str:
            return chat.rate(ids, data.index, data.liked, lang)

        chatbot.like(on_like, [message_ids, language], [thanks], api_visibility="private", queue=False)
    demo.chat_handlers = chat  # for tests and the API
    return demo

"""The customer chat: safe Markdown in what the shop writes, the customer's words as typed, thumbs only on answers
and kept, new conversations, page texts in five languages; and in real Chromium the faults the support-desk issue
lists (the empty-message Send, thumbs on notices and after a reload, Markdown links, the team reply's signal)."""

from __future__ import annotations

import html
import string
import time
from types import SimpleNamespace

import pytest

from ui import i18n
from ui.customer import CustomerChat, conversation_token
from ui.render import ARRIVED, RATEABLE, as_markdown, render_messages

# -- Markdown -------------------------------------------------------------------------------------------------------
MARKDOWN_CASES = [
    ("**bold** and *it*", "**bold** and *it*"),
    ("- one\n- two\n1. first", "- one\n- two\n1. first"),
    ("## Returns", "## Returns"),
    ("[Track it](https://example-store.com/track?id=1&x=(2))", "[Track it](https://example-store.com/track?id=1&x=\\(2\\))"),
    ("[write](mailto:help@example-store.com)", "[write](mailto:help@example-store.com)"),
    ("see https://example-store.com/help.", "see [https\\://example\\-store\\.com/help](https://example-store.com/help)."),
    ("<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;"),
    ('<img src=x onerror="alert(1)">', '&lt;img src=x onerror="alert(1)"&gt;'),
    ("[click](javascript:alert(1))", "\\[click\\](javascript:alert(1))"),
    ("[x](data:text/html,hi)", "\\[x\\](data:text/html,hi)"),
    ("![pixel](https://tracker.example/p.png)", "!\\[pixel\\]([https\\://tracker\\.example/p\\.png](https://tracker.example/p.png))"),
    ("[a]: javascript:alert(1)\n[a]", "\\[a\\]: javascript:alert(1)\n\\[a\\]"),
    ("`<b>`", "\\`&lt;b&gt;\\`"),
    ("a &amp; b", "a &amp;amp; b"),
]  # fmt: skip


@pytest.mark.parametrize("source, expected", MARKDOWN_CASES)
def test_markdown_keeps_formatting_and_links_and_neutralises_everything_else(source, expected):
    shown = as_markdown(source)
    assert shown == expected
    assert "<" not in shown and ">" not in shown.replace("&gt;", "")


def test_a_link_label_is_text_and_its_target_is_exactly_the_address():
    shown = as_markdown("[**see** <b>here</b>](https://example-store.com/a_b-c)")
    assert shown == "[\\*\\*see\\*\\* &lt;b&gt;here&lt;/b&gt;](https://example-store.com/a_b-c)"


# -- rendering the store's messages --------------------------------------------------------------------------------
def conversation_with_an_answer(engine) -> tuple[str, int]:
    conversation_id = engine.start_conversation()
    reply = engine.reply(conversation_id, "How do I track my order?")
    assert reply.route == "answer"
    return conversation_id, reply.message_id


def test_the_shops_markdown_renders_and_the_customers_stays_text(engine):
    store = engine.store
    conversation_id = engine.start_conversation()
    store.add_message(conversation_id, "user", "**not bold** <b>")
    store.add_message(conversation_id, "bot", "1. Open **My Orders**\n2. Press [Track](https://example-store.com/t)")
    store.add_message(conversation_id, "agent", "Here: <script>x</script> **done**", agent="ann")
    rows = render_messages(store.messages(conversation_id)).history
    assert rows[0]["content"] == "\\*\\*not bold\\*\\* &lt;b&gt;"
    assert rows[1]["content"] == f"1. Open **My Orders**\n2. Press [Track](https://example-store.com/t){RATEABLE}"
    assert rows[2]["content"] == f"👤 *Support team:* Here: &lt;script&gt;x&lt;/script&gt; **done**{RATEABLE}"


def test_sources_show_their_answer_as_markdown(engine):
    conversation_id, reply_id = conversation_with_an_answer(engine)
    view = CustomerChat(engine).render(conversation_id)
    [source] = [row for row in view.history if row.get("metadata")]
    entry = engine.kb.entry("track_order")
    assert source["content"] == as_markdown(entry.answer) and "Track" in source["content"]
    assert RATEABLE not in source["content"]  # the answer above it carries the thumbs


def test_notices_and_holds_have_no_thumbs_answers_do(engine):
    conversation_id, reply_id = conversation_with_an_answer(engine)
    engine.request_human(conversation_id)
    view = CustomerChat(engine).render(conversation_id)
    marked = [i for i, row in enumerate(view.history) if RATEABLE in row["content"]]
    assert marked == [1] and view.message_ids[1] == reply_id
    assert "colleague" in view.history[-1]["content"] and view.message_ids[-1] is None


def test_the_customers_message_shows_as_typed_while_the_store_keeps_it_masked(engine):
    chat = CustomerChat(engine)
    typed = "Write to jane.doe@mail.example.org about order 1234, please"
    *_, (history, token, _, _, box, kept) = chat.send(typed, "")
    conversation_id = token.partition(":")[0]
    stored = [m for m in engine.store.messages(conversation_id) if m.role == "user"][0]
    assert "jane.doe" not in stored.text and "[EMAIL]" in stored.text
    assert kept == {stored.id: typed} and box == ""
    assert html.unescape(history[0]["content"]).replace("\\", "") == typed
    # a fresh page session has no typed copy: the masked text is what it shows
    restored, *_ = chat.restore(token)
    assert restored[0]["content"] == "Write to \\[EMAIL\\] about order 1234, please"


def test_a_refused_message_raises_with_a_translated_title_and_stores_nothing(engine):
    import gradio as gr

    chat = CustomerChat(engine)
    conversation_id = engine.start_conversation()
    engine.store.set_language(conversation_id, "de")
    with pytest.raises(gr.Error) as refused:
        next(chat.send("   ", conversation_token(engine.store, conversation_id)))
    assert "leer" in str(refused.value) and refused.value.title == "Nachricht nicht gesendet"
    assert engine.store.messages(conversation_id) == []


def test_thumbs_one_per_answer_taken_back_and_kept_for_a_reload(engine):
    chat = CustomerChat(engine)
    conversation_id, reply_id = conversation_with_an_answer(engine)
    token = conversation_token(engine.store, conversation_id)
    view = chat.render(conversation_id)
    assert chat.rate(view.message_ids, 1, "Like") == "Thanks for the feedback!"
    assert chat.thumbs(token)["feedback_value"][0] == "Like"
    assert chat.rate(view.message_ids, 1, "Dislike", "fr") == "Merci pour votre avis !"
    assert engine.store.customer_ratings(conversation_id) == {reply_id: False}
    assert chat.thumbs(token)["feedback_value"][0] == "Dislike"
    assert chat.rate(view.message_ids, 1, "") == ""  # taken back
    assert engine.store.customer_ratings(conversation_id) == {}
    stats = engine.store.stats()
    assert (stats["thumbs_up"], stats["thumbs_down"]) == (0, 0)


@pytest.mark.parametrize("index", [0, -1, 99, "1", None, [None]])
def test_thumbs_on_rows_that_cannot_be_rated(engine, index):
    chat = CustomerChat(engine)
    conversation_id, _ = conversation_with_an_answer(engine)
    view = chat.render(conversation_id)
    expected = "Only answers from the bot and the team can be rated." if index == 0 else ""
    assert chat.rate(view.message_ids, index, "Like") == expected
    assert engine.store.customer_ratings(conversation_id) == {}


def test_an_agent_reply_arriving_is_marked_once(engine):
    chat = CustomerChat(engine)
    conversation_id, _ = conversation_with_an_answer(engine)
    token = conversation_token(engine.store, conversation_id)
    _, _, last_id = chat.poll(token, 0)
    engine.request_human(conversation_id)
    engine.store.agent_reply(conversation_id, "ann", "Hello, **Ann** here: [status](https://example-store.com/s)")
    history, _, newest = chat.poll(token, last_id)
    assert history[-1]["content"].endswith(f"[status](https://example-store.com/s){RATEABLE}{ARRIVED}")
    assert sum(ARRIVED in row["content"] for row in history) == 1
    assert all(not hasattr(part, "value") for part in chat.poll(token, newest))  # nothing newer: skipped
    restored, *_ = chat.restore(token)
    assert not any(ARRIVED in row["content"] for row in restored)


def test_new_conversation_forgets_this_page_and_the_next_message_starts_another(engine):
    chat = CustomerChat(engine)
    conversation_id, _ = conversation_with_an_answer(engine)
    assert chat.new_conversation(conversation_token(engine.store, conversation_id)) == ([], "", [], 0, "", {}, "")
    *_, (_, token, *_) = chat.send("How do I cancel my order?", "")
    assert token.partition(":")[0] != conversation_id
    assert engine.store.get_conversation(conversation_id).status == "open"  # the team still has the old one


def test_talk_to_a_person_clicked_while_the_first_reply_streams_joins_that_conversation(engine):
    # the page has no token until the send's first update arrives: both clicks must still be one conversation
    page = SimpleNamespace(session_hash="page-1", query_params={}, headers={})
    chat = CustomerChat(engine)
    sending = chat.send("Where is my order? Please check.", None, request=page)
    next(sending)  # the question is on its way, the page's token not yet back
    _, token, *_ = chat.talk_to_person(None, request=page)
    for _ in sending:
        pass
    conversation_id = token.partition(":")[0]
    texts = [m.text for m in engine.store.messages(conversation_id)]
    assert "Where is my order? Please check." in texts  # the question and the handoff in one conversation
    assert engine.store.get_conversation(conversation_id).status == "handoff"
    assert [h["conversation_id"] for h in engine.store.open_handoffs()] == [conversation_id]
    chat.new_conversation(token, request=page)  # and "New conversation" really starts another one
    *_, (_, fresh, *_) = chat.send("How do I cancel my order?", "", request=page)
    assert fresh.partition(":")[0] != conversation_id


def test_a_wrong_or_stale_token_opens_nothing(engine):
    chat = CustomerChat(engine)
    conversation_id, _ = conversation_with_an_answer(engine)
    for token in (conversation_id, f"{conversation_id}:wrong", "nonsense", None):
        assert chat.restore(token)[:2] == ([], "")


# -- languages ------------------------------------------------------------------------------------------------------
def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


@pytest.mark.parametrize("language", sorted(i18n.TABLES))
def test_every_page_table_has_every_text(language):
    table = i18n.TABLES[language]
    assert set(table) == set(i18n.EN), set(i18n.EN) ^ set(table)
    for key, text in table.items():
        assert text.strip() and placeholders(text) == placeholders(i18n.EN[key]), (language, key)


@pytest.mark.parametrize(
    "conversation, asked, accept, expected",
    [
        ("zh", "fr", "de", "zh"),
        (None, "fr", "de", "fr"),
        (None, None, "de-CH,de;q=0.9,en;q=0.8", "de"),
        (None, None, "ja,es;q=0.5", "es"),  # the first the pages speak
        (None, None, "fr;q=0.2, es;q=0.9", "es"),  # by weight, not order
        ("ja", "xx", "pt-BR", "en"),
        (None, None, "de;q=0, fr;q=bad", "en"),
        (None, None, None, "en"),
    ],
)
def test_page_language(conversation, asked, accept, expected):
    assert i18n.page_language(conversation, asked, accept) == expected


class FakeRequest:
    def __init__(self, query: dict | None = None, headers: dict | None = None):
        self.query_params = query or {}
        self.headers = headers or {}


def test_the_pages_texts_follow_the_conversations_language(engine):
    chat = CustomerChat(engine, company="Acme")
    header, chatbot, box, send, *_ = chat.labels("", FakeRequest(headers={"accept-language": "fr-FR,fr;q=0.9"}))
    assert "Service client Acme" in header["value"] and send["value"] == "Envoyer" and box["label"] == "Votre message"
    *_, (_, token, *_) = chat.send("我的订单在哪里？请帮我查一下。", "", request=FakeRequest())
    labels = chat.labels(token, FakeRequest(headers={"accept-language": "fr"}))
    assert labels[3]["value"] == "发送" and labels[-1] == "zh"


def test_a_new_conversation_takes_the_language_the_page_was_asked_for(engine):
    chat = CustomerChat(engine)
    history, token, *_ = chat.talk_to_person("", request=FakeRequest(query={"lang": "zh"}))
    assert history[-1]["content"].startswith(html.escape("我正在把您的问题转给同事"))
    history, *_ = chat.talk_to_person("", request=FakeRequest(headers={"accept-language": "es-ES"}))
    assert "Paso tu pregunta" in history[-1]["content"]


# -- in a real browser ----------------------------------------------------------------------------------------------
BOT = '#customer-chat [data-testid="bot"]'
USER = '#customer-chat [data-testid="user"]'
VISIBLE_LIKES = "[...document.querySelectorAll('#customer-chat [aria-label=Like]')].filter(b => b.offsetParent)"


@pytest.fixture
def page(browser, live_reset):
    context = browser.new_context(viewport={"width": 1000, "height": 900}, locale="en-US")
    context.set_default_timeout(15000)
    page = context.new_page()
    page.goto(live_reset.url + "/")
    page.wait_for_selector("#customer-input textarea")
    yield page
    context.close()


def say(page, text: str) -> None:
    page.wait_for_selector("#send-button", state="visible")
    page.fill("#customer-input textarea", text)
    page.keyboard.press("Enter")


def ask(page, text: str) -> None:
    """Send `text` and wait until its reply is complete (one more bot row, Send back)."""
    before = page.locator(BOT).count()
    say(page, text)
    page.wait_for_function(
        """([selector, n]) => document.querySelectorAll(selector).length > n
            && document.getElementById("send-button")?.offsetParent
            && !document.getElementById("stop-button")?.offsetParent""",
        arg=[BOT, before],
    )


@pytest.mark.browser
def test_browser_send_comes_back_after_an_empty_message(page, artifacts):
    say(page, "   ")
    page.wait_for_selector("text=the message is empty")
    page.wait_for_selector("#send-button", state="visible", timeout=5000)
    assert not page.is_visible("#stop-button")
    say(page, "How do I track my order?")  # and the next message goes through
    page.wait_for_selector("text=Source: How can I track my order?")
    page.screenshot(path=artifacts / "customer-empty-message.png")


@pytest.mark.browser
def test_browser_thumbs_only_on_answers_and_kept_after_a_reload(page, live_reset, artifacts):
    ask(page, "How do I track my order?")
    page.wait_for_selector("text=Source: How can I track my order?")
    page.click("#talk-to-person")
    page.wait_for_selector(f"{BOT} >> text=colleague")
    bots = page.locator(BOT).count()
    assert bots == 3  # the answer, its source, the handoff notice
    assert page.evaluate(f"{VISIBLE_LIKES}.length") == 1, "only the answer has thumbs"
    page.locator("#customer-chat [aria-label=Like]:visible").click()
    page.wait_for_selector("#feedback-note >> text=Thanks for the feedback!")
    page.wait_for_selector("#customer-chat [aria-label=Liked]")
    page.reload()
    page.wait_for_selector(f"{BOT} >> text=colleague")
    page.wait_for_selector("#customer-chat [aria-label=Liked]", timeout=5000)  # lit again, from the store
    assert page.evaluate(f"{VISIBLE_LIKES}.length") == 0
    assert page.locator("#customer-chat [aria-label=Liked]").count() == 1
    page.screenshot(path=artifacts / "customer-thumbs-after-reload.png")


@pytest.mark.browser
def test_browser_markdown_links_stay_intact_and_team_replies_are_signalled(page, live_reset, artifacts):
    store = live_reset.engine.store
    ask(page, "Hello there, I have a question about my parcel")
    page.click("#talk-to-person")
    page.wait_for_selector(f"{BOT} >> text=colleague")
    conversation_id = store.open_handoffs()[-1]["conversation_id"]
    started = time.monotonic()
    store.agent_reply(conversation_id, "ann", "Your parcel:\n\n- **left** today\n- track it at "
                      "[example-store.com](https://example-store.com/track/1?a=b&c=(d)) or https://example-store.com/x_y."
                      "\n\n<img src=x onerror=\"window.__pwned=1\">")  # fmt: skip
    page.wait_for_selector("#reply-badge:not([hidden])", timeout=5000)
    assert time.monotonic() - started < 4.5
    page.wait_for_selector(f"{BOT} >> text=Your parcel")
    last = page.locator(BOT).last
    assert last.locator("strong", has_text="left").count() == 1 and last.locator("li").count() == 2
    links = last.locator("a").evaluate_all("links => links.map(a => [a.innerText, a.getAttribute('href')])")
    assert links == [["example-store.com", "https://example-store.com/track/1?a=b&c=(d)"],
                     ["https://example-store.com/x_y", "https://example-store.com/x_y"]]  # fmt: skip
    assert page.evaluate("window.__pwned") is None and page.locator("#customer-chat img[src=x]").count() == 0
    assert "Support team" in last.inner_text()
    page.screenshot(path=artifacts / "customer-team-reply-signal.png")
    page.click("#reply-badge")
    page.wait_for_selector("#reply-badge", state="hidden")


@pytest.mark.browser
def test_browser_new_conversation_escape_and_accessible_names(page, live_reset, artifacts):
    assert page.get_by_role("textbox", name="Your message").count() == 1
    for name in ("Send", "Talk to a person", "New conversation"):
        assert page.get_by_role("button", name=name, exact=True).count() == 1, name
    live_reset.backend.queue("Open My Orders and press Track. " * 60)  # long: it streams for seconds
    say(page, "How do I track my order?")
    page.wait_for_selector("#stop-button", state="visible")
    page.wait_for_function(f"document.querySelectorAll('{BOT}').length >= 1")
    page.keyboard.press("Escape")
    page.wait_for_selector("#send-button", state="visible", timeout=5000)
    page.wait_for_selector(f"{BOT} >> text=(stopped)")
    page.click("#new-conversation")
    page.wait_for_function(f"document.querySelectorAll('{USER}').length === 0")
    ask(page, "How do I cancel my order?")
    assert page.locator(USER).count() == 1
    page.reload()  # the new conversation is the one kept
    page.wait_for_selector(f"{USER} >> text=How do I cancel my order?")
    assert page.locator(USER).count() == 1


@pytest.mark.browser
def test_browser_a_chinese_customer_gets_chinese_page_texts(browser, live_reset, artifacts):
    context = browser.new_context(viewport={"width": 1000, "height": 800}, locale="zh-CN")
    try:
        page = context.new_page()
        page.goto(live_reset.url + "/")
        page.wait_for_selector("#send-button >> text=发送")
        assert page.get_by_role("textbox", name="您的消息").count() == 1
        say(page, "我的订单在哪里？请帮我查一下。")
        page.click("#talk-to-person")
        page.wait_for_selector(f"{BOT} >> text=我正在把您的问题转给同事")
        # under the notice at most Copy: no thumbs (an answer before it may carry its own)
        under_notice = """(() => {
            const rows = [...document.querySelectorAll('#customer-chat .message-row')];
            const notice = rows.filter(r => r.textContent.includes('我正在把您的问题转给同事')).pop();
            const next = notice.nextElementSibling;
            if (!next || !next.classList.contains('message-buttons')) return 0;
            return [...next.querySelectorAll('button')].filter(b => b.offsetParent).length;
        })()"""
        assert page.evaluate(under_notice) <= 1
        page.wait_for_selector("#talk-to-person >> text=联系人工客服")
        page.screenshot(path=artifacts / "customer-chinese.png")
    finally:
        context.close()

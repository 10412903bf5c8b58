"""A Chinese customer in real Chromium: Chinese page texts (placeholder, buttons, hints), answers from a Chinese FAQ
entry, a generated Chinese reply shown when the claim check finds it supported and replaced by the source's words
when it changes a number, short messages ("好的", "谢谢", "OK", an order number) that keep the conversation Chinese,
and the Chinese notices (thanks, waiting for a person, the handoff)."""

from __future__ import annotations

import json

import pytest

from tests.fixtures_ui import Live, ServerThread, chatbot_home_as

FAQ = [
    {"id": "refund_time", "question": "退货后多久能收到退款？", "language": "zh",
     "answer": "退款会在收到退货后的3到5个工作日内退回原支付账户。"},
    {"id": "free_shipping", "question": "运费怎么算？", "language": "zh",
     "answer": "订单满99元免运费，不满99元收取10元运费。"},
    {"id": "custom_items", "question": "定制商品可以退货吗？", "language": "zh",
     "answer": "定制商品不支持退货。"},
    {"id": "track_order", "question": "How do I track my order?", "answer": "Open My Orders and press Track."},
]  # fmt: skip
BOT = '#customer-chat [data-testid="bot"]'
USER = '#customer-chat [data-testid="user"]'


@pytest.fixture(scope="module")
def live_zh(tmp_path_factory):
    from chatbot.config import AppConfig, StoreConfig
    from chatbot.engine import Engine
    from chatbot.store import Store
    from knowledge_base.config import KBConfig
    from knowledge_base.embedder import HashEmbedder
    from knowledge_base.kb import KnowledgeBase
    from tests.fixtures_engine import ScriptedBackend
    from ui.app import create_app

    home = tmp_path_factory.mktemp("live-zh")
    faq = home / "faq.jsonl"
    faq.write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in FAQ), encoding="utf-8")
    with chatbot_home_as(home):
        config = AppConfig()
        config.kb = KBConfig(embedder="hash:256")
        config.language.model_languages = ("en", "zh")  # a model that writes Chinese (Qwen2.5 Instruct)
        embedder = HashEmbedder(dim=256)
        kb = KnowledgeBase(home / "kb", config.kb, embedder)
        kb.build(faq)
        backend = ScriptedBackend(delay=0.02)
        store = Store(StoreConfig(), path=home / "chatbot.sqlite3")
        engine = Engine.from_config(config, kb=kb, embedder=embedder, backend=backend, store=store).warm_up()
        app = create_app(engine.config, engine)
    with ServerThread(app) as server:
        yield Live(server.url, engine, backend, app)
    engine.close()


@pytest.fixture
def zh_page(browser, live_zh):
    live_zh.backend.replies.clear()
    context = browser.new_context(viewport={"width": 1000, "height": 900}, locale="zh-CN")
    context.set_default_timeout(15000)
    page = context.new_page()
    page.goto(live_zh.url + "/")
    page.wait_for_selector("#send-button >> text=发送")  # the page's texts follow the browser's language on load
    yield page
    context.close()
    live_zh.backend.replies.clear()


def ask(page, text: str) -> str:
    """Send `text`, wait until its reply is complete, and return the text of the bot's new messages (the reply and
    its source line)."""
    before = page.locator(BOT).count()
    page.wait_for_selector("#send-button", state="visible")
    page.fill("#customer-input textarea", text)
    page.keyboard.press("Enter")
    page.wait_for_function(
        """([selector, n]) => document.querySelectorAll(selector).length > n
            && document.getElementById("send-button")?.offsetParent
            && !document.getElementById("stop-button")?.offsetParent""",
        arg=[BOT, before],
    )
    return "\n".join(page.locator(BOT).all_inner_texts()[before:])


@pytest.mark.browser
def test_browser_a_chinese_conversation_is_chinese_throughout(zh_page, live_zh, artifacts):
    page = zh_page
    assert page.locator("#send-button").inner_text().strip() == "发送"
    page.wait_for_function("document.title === 'Acme 客服'")  # the browser tab's title too
    assert page.evaluate("document.documentElement.lang") == "zh"
    assert page.get_by_role("textbox", name="您的消息").count() == 1
    placeholder = page.locator("#customer-input textarea").get_attribute("placeholder")
    assert placeholder == "输入您的消息…（回车发送，Esc 停止）"
    for name in ("联系人工客服", "新对话"):
        assert page.get_by_role("button", name=name, exact=True).count() == 1, name

    # a generated Chinese reply the sources support is shown as generated
    live_zh.backend.queue("您好！退款会在收到退货后的三到五个工作日内退回原支付账户。")
    assert "三到五个工作日" in ask(page, "退货以后多久能收到退款？")
    # one that changes the number is replaced by the Chinese source's own words
    live_zh.backend.queue("订单满50元免运费。")
    assert "订单满99元免运费" in ask(page, "运费怎么算？")
    assert "50元" not in page.locator(BOT).last.inner_text()
    page.screenshot(path=artifacts / "customer-chinese-answers.png")

    # short messages, "OK" and an order number keep the conversation Chinese
    assert "不客气" in ask(page, "谢谢")
    ask(page, "OK")
    ask(page, "A1234567890")
    newest = live_zh.engine.store.read("SELECT language FROM conversations ORDER BY created_at DESC LIMIT 1")
    assert newest[0][0] == "zh"

    page.click("#talk-to-person")
    page.wait_for_selector(f"{BOT} >> text=我正在把您的问题转给同事")
    texts = page.locator(BOT).all_inner_texts()
    assert not any(english in " ".join(texts) for english in ("passing your question", "You're welcome", "Thanks!"))
    page.screenshot(path=artifacts / "customer-chinese-handoff.png")


@pytest.mark.browser
def test_browser_a_chinese_faq_entry_answers_when_the_model_writes_no_chinese(browser, live_zh, artifacts):
    live_zh.engine.config.language.model_languages = ("en",)
    context = browser.new_context(viewport={"width": 1000, "height": 900}, locale="zh-CN")
    try:
        page = context.new_page()
        page.goto(live_zh.url + "/")
        page.wait_for_selector("#send-button >> text=发送")
        assert ask(page, "定制商品可以退货吗？").strip().startswith("定制商品不支持退货。")
        assert not live_zh.backend.requests or "定制商品" not in live_zh.backend.requests[-1].messages[-1]["content"]
        page.screenshot(path=artifacts / "customer-chinese-verbatim.png")
    finally:
        live_zh.engine.config.language.model_languages = ("en", "zh")
        context.close()

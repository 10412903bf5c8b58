"""End to end in a real headless Chromium (Debian's, driven by Playwright): the customer, the agent, the admin and an
anonymous visitor. One live server for the module; each test saves screenshots under `test-artifacts/`."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.fixtures_ui import PASSWORDS

pytestmark = pytest.mark.browser

BOT = '#customer-chat [data-testid="bot"]'
USER = '#customer-chat [data-testid="user"]'


@pytest.fixture
def context(browser, live_reset):
    ctx = browser.new_context(viewport={"width": 1100, "height": 800}, locale="en-US")
    ctx.set_default_timeout(15000)
    yield ctx
    ctx.close()


def open_chat(context, live):
    page = context.new_page()
    page.goto(live.url + "/")
    page.wait_for_selector("#customer-input textarea")
    return page


def say(page, text: str) -> None:
    """Type and send a message once the previous reply has finished (the Send button is back)."""
    page.wait_for_selector("#send-button", state="visible")
    page.fill("#customer-input textarea", text)
    page.keyboard.press("Enter")
    page.wait_for_selector("#stop-button", state="visible")


def login(context, live, name: str, target: str):
    page = context.new_page()
    page.goto(live.url + target)
    page.wait_for_selector('input[name="password"]')  # sent to the login form first
    assert "/login" in page.url
    page.fill('input[name="username"]', name)
    page.fill('input[name="password"]', PASSWORDS[name])
    page.click('button[type="submit"]')
    page.wait_for_url(f"**{target}**")
    return page


def test_customer_sees_a_streamed_answer_with_its_source(context, live_reset, artifacts):
    page = open_chat(context, live_reset)
    # every change of the bot's message is recorded in the page itself (polling from here missed the middle state
    # when the machine was busy)
    page.evaluate(
        """(sel) => { window.__lengths = [];
        new MutationObserver(() => { const el = document.querySelector(sel);
                                     if (el) window.__lengths.push(el.innerText.length); })
            .observe(document.body, {subtree: true, childList: true, characterData: true}); }""",
        BOT,
    )
    say(page, "How do I track my order?")
    page.wait_for_selector(BOT)
    page.wait_for_selector("text=Source: How can I track my order?")
    lengths = page.evaluate("window.__lengths")
    growing = sorted(set(n for n in lengths if n > 2))
    # two sentences, each shown once the claim check passed it
    assert len(growing) >= 2, f"the reply should grow sentence by sentence, saw lengths {lengths}"
    assert "Track" in page.locator(BOT).first.inner_text()
    source = page.locator("text=Source: How can I track my order?")
    source.click()  # the expander opens on the FAQ entry's answer
    page.wait_for_selector("text=score 0.89")
    page.screenshot(path=artifacts / "customer-answer.png", full_page=True)

    page.reload()  # the conversation is kept in the browser
    page.wait_for_selector(USER)
    assert page.locator(USER).first.inner_text().strip() == "How do I track my order?"


def test_markup_is_shown_as_text_and_rtl_cjk_render(context, live_reset, artifacts):
    page = open_chat(context, live_reset)
    attack = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'
    say(page, attack)
    page.wait_for_selector(USER)
    page.wait_for_function("document.querySelectorAll('#customer-chat [data-testid=\"bot\"]').length >= 1")
    assert page.locator(USER).first.inner_text().strip() == attack
    assert page.evaluate("window.__pwned") is None
    assert page.locator("#customer-chat img[src='x']").count() == 0
    assert page.locator("#customer-chat script").count() == 0

    arabic, chinese = "مرحبا، أين طلبي؟", "我的订单在哪里？请帮我查一下。"
    for text in (arabic, chinese):
        say(page, text)
        page.wait_for_function(f"t => [...document.querySelectorAll('{USER}')].some(e => e.innerText.trim() === t)",
                               arg=text)  # fmt: skip
    node = page.locator(USER, has_text=arabic).locator("p").first
    assert node.evaluate("e => getComputedStyle(e).unicodeBidi") == "plaintext"
    box = node.bounding_box()
    assert box and box["height"] < 60, "the Arabic line should render on one line"
    page.wait_for_timeout(1500)
    page.screenshot(path=artifacts / "customer-markup-rtl-cjk.png", full_page=True)


def test_agent_approves_a_draft_and_the_customer_sees_it_arrive(browser, context, live_reset, artifacts):
    live_reset.engine.config.routing.mode = "draft_only"
    customer = open_chat(context, live_reset)
    say(customer, "How do I cancel my order?")
    customer.wait_for_selector(f"{BOT} >> text=confirm")
    customer.wait_for_selector("#send-button", state="visible")  # the reply is complete
    assert "⏳" in customer.locator(BOT).last.inner_text()

    agent_context = browser.new_context(viewport={"width": 1200, "height": 900})
    agent_context.set_default_timeout(15000)
    try:
        console = login(agent_context, live_reset, "ann", "/agent/")
        console.wait_for_selector("text=Signed in as")
        draft_id = live_reset.engine.store.pending_drafts()[-1].id
        console.click(f"#inbox label:has-text('draft #{draft_id} to review')")  # the draft is an inbox item
        console.wait_for_selector("#draft-info >> text=cancel")
        assert "Cancel order" in console.input_value("#draft-text textarea")
        console.screenshot(path=artifacts / "agent-console.png", full_page=True)
        console.click("#approve")
        console.wait_for_selector(f"#desk-status >> text=Draft #{draft_id} sent by ann")
    finally:
        agent_context.close()

    # no reload: the chat page's timer brings the agent's text in place of the hold notice
    customer.wait_for_selector(f"{BOT} >> text=Support team", timeout=10000)
    last = customer.locator(BOT).last.inner_text()
    assert "Cancel order" in last and "⏳" not in last
    customer.screenshot(path=artifacts / "customer-draft-approved.png", full_page=True)


def test_admin_uploads_a_broken_faq_and_the_bot_keeps_answering(browser, live_reset, artifacts, tmp_path):
    before = live_reset.engine.kb.current_version
    broken = tmp_path / "faq.jsonl"
    broken.write_text(
        '{"id": "a", "question": "Where is my parcel?", "answer": "On its way."}\n'
        '{"id": "b", "question": "", "answer": "x"}\n'
        "{not json}\n"
        '{"id": "a", "question": "Again", "answer": "dup"}\n',
        encoding="utf-8",
    )
    admin_context = browser.new_context(viewport={"width": 1200, "height": 900})
    admin_context.set_default_timeout(15000)
    try:
        page = login(admin_context, live_reset, "ada", "/admin/")
        page.wait_for_selector("#faq-versions")
        page.set_input_files("#faq-upload input[type=file]", str(broken))
        page.wait_for_selector("#faq-report >> text=problem(s)")
        report = page.inner_text("#faq-report")
        for line in ("2", "3", "4"):
            assert f"\n{line}\t" in report or f"{line}\t" in report, report
        assert "keeps answering" in report
        assert page.locator("#faq-build").is_disabled()
        page.screenshot(path=artifacts / "admin-broken-faq.png", full_page=True)
        page.click("button[role=tab]:has-text('Figures')")
        page.wait_for_selector("#figures-summary >> text=answered")
        # questions with no good source include the customer's markup from another test: shown as text only
        assert page.evaluate("window.__pwned") is None and page.locator("img[src='x']").count() == 0
        page.screenshot(path=artifacts / "admin-figures.png", full_page=True)
    finally:
        admin_context.close()
    assert live_reset.engine.kb.current_version == before
    question = {"messages": [{"role": "user", "content": "How do I track my order?"}]}
    answer = httpx.post(live_reset.url + "/v1/chat/completions", json=question).json()
    assert answer["chatbot"]["route"] == "answer" and answer["chatbot"]["index_version"] == before


def test_anonymous_visitors_cannot_reach_agent_or_admin(context, live_reset, artifacts):
    page = context.new_page()
    for prefix in ("/agent", "/admin"):
        page.goto(live_reset.url + prefix + "/")
        page.wait_for_selector('input[name="password"]')
        assert "/login" in page.url
        statuses = page.evaluate(
            """async prefix => {
                const out = [];
                for (const [method, path] of [["GET", "/config"], ["GET", "/gradio_api/info"],
                                              ["POST", "/gradio_api/queue/join"], ["POST", "/gradio_api/upload"]]) {
                    const r = await fetch(prefix + path, {method, headers: {"content-type": "application/json"},
                                                          body: method === "POST" ? "{}" : undefined});
                    out.push(r.status);
                }
                return out;
            }""",
            prefix,
        )
        assert statuses == [401, 401, 401, 401]
    page.screenshot(path=artifacts / "login-form.png", full_page=True)
    page.fill('input[name="username"]', "ann")
    page.fill('input[name="password"]', "wrong-password")
    page.click('button[type="submit"]')
    page.wait_for_selector("text=Wrong user name or password")
    assert json.loads(httpx.get(live_reset.url + "/admin/config").text)["detail"].startswith("login required")

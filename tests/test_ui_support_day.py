"""A support day in a real headless Chromium: a customer asks, gets an answer, asks a follow-up, asks for a person;
an agent signs in at `/agent` (no slash), finds the conversation in the inbox, assigns it and replies; the customer
sees the reply within 2 s, with the page's badge, while the bot stays silent; the agent resolves and the customer
rates. Then the issue's two-tab race: a draft approved in one tab cannot be sent again from another tab showing
it, and no other draft is. Screenshots of the inbox and the review go to `test-artifacts/`."""

from __future__ import annotations

import time

import pytest

from chatbot.notices import EN
from tests.fixtures_ui import PASSWORDS

pytestmark = pytest.mark.browser

BOT = '#customer-chat [data-testid="bot"]'
USER = '#customer-chat [data-testid="user"]'
REPLY_WITHIN_S = 2.0


@pytest.fixture
def contexts(browser, live_reset):
    made = []

    def new(width: int = 1100, height: int = 800):
        ctx = browser.new_context(viewport={"width": width, "height": height}, locale="en-US")
        ctx.set_default_timeout(15000)
        made.append(ctx)
        return ctx

    yield new
    for ctx in made:
        ctx.close()


def say(page, text: str) -> None:
    """Type and send a message once the previous reply has finished (the Send button is back)."""
    page.wait_for_selector("#send-button", state="visible")
    page.fill("#customer-input textarea", text)
    page.keyboard.press("Enter")
    page.wait_for_function(f"t => [...document.querySelectorAll('{USER}')].some(e => e.innerText.trim() === t)",
                           arg=text)  # fmt: skip


def sign_in(context, live, name: str):
    """Open `/agent` (no slash) signed out, sign in on the form, land on the console."""
    page = context.new_page()
    page.goto(live.url + "/agent")
    page.wait_for_selector('input[name="password"]')
    page.fill('input[name="username"]', name)
    page.fill('input[name="password"]', PASSWORDS[name])
    page.click('button[type="submit"]')
    page.wait_for_url("**/agent/")
    page.wait_for_selector("#agent-who >> text=Signed in as")
    return page


def inbox_item(page, text: str):
    return page.locator("#inbox label", has_text=text)


def test_a_support_day(contexts, live_reset, artifacts):
    store = live_reset.engine.store
    customer = contexts().new_page()
    customer.goto(live_reset.url + "/")
    say(customer, "How do I track my order?")
    customer.wait_for_selector("text=Source: How can I track my order?")
    say(customer, "How long does delivery take?")
    customer.wait_for_function(f"document.querySelectorAll('{BOT}').length >= 2")
    customer.wait_for_selector("#send-button", state="visible")
    customer.click("#talk-to-person")
    customer.wait_for_selector(f"{BOT} >> text=colleague")
    conversation_id = store.desk_rows()[0]["id"]

    agent = sign_in(contexts(1300, 900), live_reset, "ann")
    item = inbox_item(agent, "How long does delivery take?")
    item.wait_for()
    assert "waiting for a person" in item.inner_text() and "unassigned" in item.inner_text()
    agent.wait_for_function("document.title === '(1) Agent console'")
    item.click()
    agent.wait_for_selector("#pane-header >> text=waiting for a person")
    agent.wait_for_selector("#pane-chat >> text=How do I track my order?")
    assert agent.locator("#pane-chat >> text=/Customer · \\d\\d:\\d\\d:\\d\\d/").count() == 2  # times per message
    agent.screenshot(path=artifacts / "desk-inbox.png", full_page=True)

    agent.click("#assign")
    agent.wait_for_selector("#pane-header >> text=assigned to ann")
    agent.wait_for_function("document.title === 'Agent console'")  # nobody waits any more
    agent.fill("#reply-text textarea", "Hi, Ann here. Your parcel left our warehouse this morning.")
    agent.click("#reply-send")
    sent = time.monotonic()
    customer.wait_for_selector(f"{BOT} >> text=Ann here", timeout=REPLY_WITHIN_S * 1000 + 500)
    seen = time.monotonic() - sent
    assert seen <= REPLY_WITHIN_S, f"the agent's reply took {seen:.2f} s to reach the customer"
    assert "Support team" in customer.locator(BOT).last.inner_text()
    customer.wait_for_selector("#reply-badge", state="visible", timeout=1000)  # the signal that a reply arrived

    # the bot stays silent while the agent has the conversation; the agent's pane shows the message live
    bots_before = customer.locator(BOT).count()
    say(customer, "Great, thanks! Can I change the address?")
    asked = time.monotonic()
    agent.wait_for_selector("#pane-chat >> text=Can I change the address?", timeout=REPLY_WITHIN_S * 1000)
    assert time.monotonic() - asked <= REPLY_WITHIN_S + 0.5
    customer.wait_for_selector("#send-button", state="visible")
    customer.wait_for_timeout(1500)
    assert customer.locator(BOT).count() == bots_before
    assert [m.role for m in store.messages(conversation_id)][-2:] == ["agent", "user"]

    agent.click("#resolve")
    agent.wait_for_selector("#pane-header >> text=resolved")
    customer.wait_for_selector(f"{BOT} >> text=This conversation is now closed", timeout=5000)
    assert EN["resolved"].split(";")[0] in customer.locator(BOT).last.inner_text()

    # the customer rates the team's reply
    thumbs_up = store.stats()["thumbs_up"]
    reply_bubble = customer.locator(BOT, has_text="Ann here")
    reply_bubble.hover()
    reply_bubble.locator("xpath=following::button[@aria-label='Like'][1]").click()  # the thumbs under the message
    customer.wait_for_selector("#feedback-note >> text=Thanks")
    assert store.stats()["thumbs_up"] == thumbs_up + 1
    customer.screenshot(path=artifacts / "desk-customer-day.png", full_page=True)


def test_two_tab_race_refuses_the_stale_approval(contexts, live_reset, artifacts):
    engine = live_reset.engine
    engine.config.routing.mode = "draft_only"
    chats = []
    for question in ("How do I get a refund?", "How do I cancel my order?"):
        page = contexts().new_page()
        page.goto(live_reset.url + "/")
        say(page, question)
        page.wait_for_selector(f"{BOT} >> text=confirm")
        page.wait_for_selector("#send-button", state="visible")  # the draft is recorded once the reply is done
        chats.append(page)
    drafts = engine.store.pending_drafts()
    first, second = drafts[-2], drafts[-1]

    desk = contexts(1300, 900)
    tab_1 = sign_in(desk, live_reset, "ann")
    tab_2 = desk.new_page()
    tab_2.goto(live_reset.url + "/agent")
    for tab in (tab_1, tab_2):
        inbox_item(tab, f"draft #{first.id} to review").click()
        tab.wait_for_selector(f"#draft-info >> text=Draft #{first.id}")
        assert "30 days" in tab.input_value("#draft-text textarea")
    tab_2.screenshot(path=artifacts / "desk-review.png", full_page=True)

    tab_1.click("#approve")
    tab_1.wait_for_selector(f"#desk-status >> text=Draft #{first.id} sent by ann")
    # tab 2 still shows draft #first: it says so and its Approve is refused
    tab_2.wait_for_selector(f"#draft-info >> text=Draft #{first.id} was approved by ann meanwhile", timeout=3000)
    tab_2.screenshot(path=artifacts / "desk-review-stale.png", full_page=True)
    tab_2.click("#approve")
    tab_2.wait_for_selector("#desk-status >> text=changed since you opened it")
    assert "nothing was sent" in tab_2.inner_text("#desk-status")
    tab_2.screenshot(path=artifacts / "desk-review-refused.png", full_page=True)
    assert engine.store.draft(second.id).state == "pending"  # the other draft was not sent
    assert sum(m.role == "agent" for m in engine.store.messages(first.conversation_id)) == 1

    tab_2.reload()  # after a reload the inbox lists only what is still to do
    inbox_item(tab_2, f"draft #{second.id} to review").wait_for()
    assert inbox_item(tab_2, f"draft #{first.id} to review").count() == 0
    inbox_item(tab_2, f"draft #{second.id} to review").click()
    tab_2.wait_for_selector(f"#draft-info >> text=Draft #{second.id}")
    tab_2.click("#reopen")  # a wrong click: the conversation is not resolved
    tab_2.wait_for_selector("#desk-status >> text=is not resolved: there is nothing to reopen")
    tab_2.fill("#inbox-search textarea", "refund")  # search by text
    tab_2.keyboard.press("Enter")
    tab_2.wait_for_function("document.querySelectorAll('#inbox label').length === 1")
    assert "How do I get a refund?" in tab_2.inner_text("#inbox")
    chats[0].wait_for_selector(f"{BOT} >> text=Support team", timeout=5000)

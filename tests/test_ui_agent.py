"""The agent console: `/agent` and `/admin` without the slash, the inbox's lines, the live pane (redrawn only on a
change, a draft on screen never swapped), safe review with the draft reference, and the console's actions through
Gradio's own client against a live server."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from gradio_client import Client

from chatbot.desk import InboxItem
from chatbot.notices import EN
from ui.agent import AgentConsole, inbox_label, parse_ref
from ui.auth import COOKIE

SKIP = {"__type__": "update"}
"""What `gr.skip()` sends: leave the output as it is."""


def plain(markdown: str) -> str:
    """Markdown with its backslash escapes removed (what the agent reads)."""
    return markdown.replace("\\", "")


@pytest.fixture
def client(ui_app):
    with TestClient(ui_app) as c:
        yield c


@pytest.fixture
def console(engine):
    return AgentConsole(engine)


def login(client, name: str, password: str, target: str):
    return client.post("/login", data={"username": name, "password": password, "next": target},
                       follow_redirects=False)  # fmt: skip


# -- /agent and /admin ------------------------------------------------------------------------------------------
def test_agent_and_admin_work_without_the_trailing_slash(client, engine):
    engine.store.add_user("ann", "agent", "ann-password-1")
    engine.store.add_user("ada", "admin", "ada-password-1")
    anonymous = client.get("/agent", headers={"accept": "text/html"}, follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"] == "/login?next=%2Fagent"

    signed_in = login(client, "ann", "ann-password-1", "/agent")
    assert signed_in.headers["location"] == "/agent"
    page = client.get("/agent", headers={"accept": "text/html"})  # follows /agent -> /agent/
    assert page.status_code == 200 and str(page.url).endswith("/agent/") and "gradio" in page.text.lower()
    assert client.get("/agent?x=1", follow_redirects=False).headers["location"] == "/agent/?x=1"
    refused = client.get("/admin", follow_redirects=False)
    assert refused.status_code == 403  # an agent is not an admin, slash or not

    login(client, "ada", "ada-password-1", "/admin")
    admin = client.get("/admin", headers={"accept": "text/html"})
    assert admin.status_code == 200 and str(admin.url).endswith("/admin/")
    config = client.get("/admin/config").text
    assert 'href=\\"/agent\\"' in config  # the admin page's "Agent console" link, which now opens the console
    assert client.get("/agent", headers={"accept": "text/html"}).status_code == 200


# -- the inbox -------------------------------------------------------------------------------------------------
def item(**changes) -> InboxItem:
    fields = {"conversation_id": "c1", "state": "waiting", "customer_text": "I need a person  now", "customer_at": 0.0,
              "last_at": 0.0, "unread": True, "assignee": None, "language": "en", "draft_id": None}  # fmt: skip
    return InboxItem(**{**fields, **changes})


@pytest.mark.parametrize(
    "changes, label",
    [
        ({}, "● new · ◆ waiting for a person · 2 min ago · unassigned — I need a person now"),
        ({"unread": False, "state": "with_agent", "assignee": "ann"},
         "▶ with an agent · 2 min ago · ann — I need a person now"),
        ({"unread": False, "draft_id": 5},
         "◆ waiting for a person · 2 min ago · unassigned · draft #5 to review — I need a person now"),
        ({"customer_text": ""},
         "● new · ◆ waiting for a person · 2 min ago · unassigned — (asked for a person, no message yet)"),
        ({"unread": False, "state": "resolved", "customer_text": "x" * 80},
         "✓ resolved · 2 min ago · unassigned — " + "x" * 59 + "…"),
    ],
)  # fmt: skip
def test_inbox_label(changes, label):
    assert inbox_label(item(**changes), now=150.0) == label


def test_inbox_choices_filter_and_summary(engine, console):
    waiting = engine.start_conversation()
    engine.request_human(waiting)
    bot = engine.start_conversation()
    engine.reply(bot, "How do I track my order?")
    update, summary = console.inbox("All", "", waiting)
    assert [value for _, value in update["choices"]] == [waiting, bot] and update["value"] == waiting
    assert summary.startswith("**1** waiting for a person · **0** with an agent · **1** with the bot")
    update, _ = console.inbox("Waiting", "", bot)
    assert [value for _, value in update["choices"]] == [waiting] and update["value"] is None
    update, summary = console.inbox("Resolved", "", None)
    assert update["choices"] == [] and "no conversation matches" in summary
    update, _ = console.inbox("nonsense", "track", None)  # an unknown filter shows all
    assert [value for _, value in update["choices"]] == [bot]


# -- the pane --------------------------------------------------------------------------------------------------
def drafted(engine, text: str) -> str:
    engine.config.routing.mode = "draft_only"
    cid = engine.start_conversation()
    engine.reply(cid, text)
    engine.config.routing.mode = "auto"
    return cid


def test_pane_shows_times_and_redraws_only_on_a_change(engine, console):
    cid = engine.start_conversation()
    engine.reply(cid, "How do I track my order?")
    header, typing, chat, review, info, text, ref, signature = console.pane(cid, "ann", "", "")
    assert "with the bot" in header and "nobody assigned" in header and typing == ""
    assert chat[0]["content"].startswith("*Customer · ") and chat[0]["content"].endswith("How do I track my order?")
    assert chat[1]["content"].startswith("*Bot · answer · ")
    assert review["visible"] is False and ref == ""
    assert all(
        type(part).__name__ == "skip" or part == {"__type__": "update"}
        for part in console.pane(cid, "ann", ref, signature)
    ), "nothing changed: nothing is redrawn"
    console.desk.typing(cid, "ada")
    header, typing, *_ = console.pane(cid, "ann", ref, signature)
    assert typing == "✎ ada is typing…"


def test_pane_shows_the_customer_literally_and_the_team_as_markdown(engine, console):
    cid = engine.start_conversation()
    engine.reply(cid, "I typed **this** <b>myself</b>")
    console.desk.reply(cid, "ann", "Steps:\n\n1. Open **My Orders**\n2. See [help](https://example.com/help)")
    customer, *_, agent = console.history(console.desk.view(cid))
    assert customer["content"].endswith("I typed \\*\\*this\\*\\* &lt;b&gt;myself&lt;/b&gt;")
    assert agent["content"].startswith("*Agent ann · ")
    assert "**My Orders**" in agent["content"] and "(https://example.com/help)" in agent["content"]


def test_a_draft_on_screen_is_never_swapped(engine, console):
    cid = drafted(engine, "How do I get a refund?")
    *_, review, info, text, ref, signature = console.pane(cid, "ann", "", "", force=True)
    first = parse_ref(ref)[0]
    assert review["visible"] is True and f"**Draft #{first}**" in info and "score" in info and "30 days" in text
    assert "refund" in info.lower()  # the source's question and answer beside the draft

    draft = console.desk.draft(first)
    console.desk.approve(draft.id, draft.version, "ada")  # another agent, another tab
    engine.config.routing.mode = "draft_only"
    engine.reply(cid, "And how do I cancel my order?")  # a new draft in the same conversation
    *_, review, info, text, new_ref, _ = console.pane(cid, "ann", ref, signature)
    assert info.startswith(f"⚠ **Draft #{first} was approved by ada meanwhile**")
    assert new_ref == SKIP and text == SKIP  # the page keeps the old reference and the agent's text
    refused = plain(console.approve(ref, None, "ann", edited=False))
    assert refused.startswith(f"⚠ draft #{first} changed since you opened it (it was approved by ada)")
    *_, info, text, fresh, _ = console.pane(cid, "ann", ref, signature, force=True)  # "Refresh"
    assert parse_ref(fresh)[0] != first and "cancel" in info.lower()


@pytest.mark.parametrize("ref", ["", None, "5", "x|v", "|v", "5|", "5 |v"])
def test_review_without_a_proper_draft_reference_is_refused(console, ref):
    assert parse_ref(ref) is None
    assert console.approve(ref, None, "ann", edited=False).startswith("No draft on screen")
    assert console.reject(ref, "wrong", "ann").startswith("No draft on screen")


def test_actions_without_a_conversation_say_what_to_do(console):
    for action in (console.assign, console.hand_back, console.resolve, console.reopen):
        assert action("", "ann") == "Select a conversation first."
    assert console.reply("", "hello", "ann") == ("Select a conversation first.", "hello")
    header, *_ = console.pane("", "ann", "", "")
    assert header == "Select a conversation in the inbox."
    header, *_ = console.pane("no-such-id", "ann", "", "")
    assert "unknown conversation" in header


# -- through Gradio's client against a live server -------------------------------------------------------------
def desk_client(live, name: str) -> Client:
    return Client(f"{live.url}/agent/", verbose=False, headers={"Cookie": f"{COOKIE}={live.login(name)}"})


def test_console_actions_over_http(live_reset):
    engine = live_reset.engine
    cid = engine.start_conversation()
    engine.reply(cid, "How do I track my order?")
    engine.request_human(cid)
    ann, ada = desk_client(live_reset, "ann"), desk_client(live_reset, "ada")
    opened = ann.predict(cid, api_name="/open")
    assert opened[0] == cid and "waiting for a person" in opened[2]
    assert ann.predict(cid, api_name="/assign") == "Assigned to ann."
    assert "assigned to **ann**" in ada.predict(cid, api_name="/open")[2]  # the other agent sees who has it
    status, box = ann.predict(cid, "Hi, Ann here.", api_name="/reply")
    assert (status, box) == ("Sent by ann.", "")
    assert ann.predict(cid, api_name="/resolve").startswith("Resolved")
    assert [m.text for m in engine.store.messages(cid)][-2:] == ["Hi, Ann here.", EN["resolved"]]
    assert plain(ann.predict(cid, "too late", api_name="/reply")[0]).endswith("is resolved: reopen it first")
    assert ann.predict(cid, api_name="/reopen") == "Reopened and assigned to ann."
    assert ann.predict(cid, api_name="/hand_back").startswith("Handed back")


def test_two_tab_race_over_http(live_reset):
    engine = live_reset.engine
    first = drafted(engine, "How do I get a refund?")
    second = drafted(engine, "How do I cancel my order?")
    tab_1, tab_2 = desk_client(live_reset, "ann"), desk_client(live_reset, "ann")
    ref_1, ref_2 = tab_1.predict(first, api_name="/open")[7], tab_2.predict(first, api_name="/open")[7]
    assert ref_1 == ref_2 and ref_1
    draft_2 = parse_ref(ref_1)[0]
    assert plain(tab_1.predict(ref_1, api_name="/approve")) == f"Draft #{draft_2} sent by ann."
    refused = plain(tab_2.predict(ref_2, api_name="/approve"))
    assert refused.startswith(f"⚠ draft #{draft_2} changed since you opened it") and "nothing was sent" in refused
    assert [d.conversation_id for d in engine.store.pending_drafts()] == [second]  # the other draft was not sent
    assert sum(m.role == "agent" for m in engine.store.messages(first)) == 1


# -- the desk's JSON API ---------------------------------------------------------------------------------------
def test_desk_api_plays_the_two_tab_race(client, engine):
    engine.store.add_user("ann", "agent", "ann-password-1")
    first, second = drafted(engine, "How do I get a refund?"), drafted(engine, "How do I cancel my order?")
    assert client.get("/agent/api/inbox").status_code == 401  # signed in like the console
    login(client, "ann", "ann-password-1", "/agent")
    inbox = client.get("/agent/api/inbox", params={"state": "waiting"}).json()
    assert [i["conversation_id"] for i in inbox["items"]] == [second, first] and inbox["counts"]["waiting"] == 2
    assert client.get("/agent/api/inbox", params={"state": "lost"}).status_code == 422
    assert [i["conversation_id"] for i in client.get("/agent/api/inbox", params={"q": "refund"}).json()["items"]] == [
        first
    ]
    draft = client.get(f"/agent/api/conversations/{first}").json()["draft"]
    assert "30 days" in draft["text"] and draft["sources"][0]["faq_id"]
    sent = client.post(f"/agent/api/drafts/{draft['id']}/approve", json={"version": draft["version"]})
    assert sent.status_code == 200 and sent.json()["message_id"]
    again = client.post(f"/agent/api/drafts/{draft['id']}/approve", json={"version": draft["version"]})
    assert again.status_code == 409 and again.json()["error"]["code"] == "stale_draft"
    assert "nothing was sent" in again.json()["error"]["message"]
    assert [d.conversation_id for d in engine.store.pending_drafts()] == [second]
    other = client.get(f"/agent/api/conversations/{second}").json()["draft"]
    wrong = client.post(f"/agent/api/drafts/{other['id']}/reject", json={"version": "1:pending:0", "reason": "x"})
    assert wrong.status_code == 409 and engine.store.draft(other["id"]).state == "pending"
    assert client.post(f"/agent/api/drafts/{other['id']}/reject", json={"version": other["version"]}).status_code == 422
    assert client.post("/agent/api/drafts/999/approve", json={"version": "v"}).json()["error"]["code"] == (
        "unknown_draft"
    )


def test_desk_api_states_and_replies(client, engine):
    engine.store.add_user("ann", "agent", "ann-password-1")
    cid = engine.start_conversation()
    engine.request_human(cid)
    login(client, "ann", "ann-password-1", "/agent")
    assert client.post(f"/agent/api/conversations/{cid}/assign").json()["assignee"] == "ann"
    view = client.post(f"/agent/api/conversations/{cid}/reply", json={"text": "Hi, Ann here."}).json()
    assert view["state"] == "with_agent" and view["messages"][-1]["text"] == "Hi, Ann here."
    empty = client.post(f"/agent/api/conversations/{cid}/reply", json={"text": " "})
    assert empty.status_code == 409 and "empty" in empty.json()["error"]["message"]
    assert client.post(f"/agent/api/conversations/{cid}/reply", json={"text": 5}).status_code == 422
    assert client.post(f"/agent/api/conversations/{cid}/resolve").json()["state"] == "resolved"
    assert client.post(f"/agent/api/conversations/{cid}/reopen").json()["state"] == "with_agent"
    back = client.post(f"/agent/api/conversations/{cid}/hand_back").json()
    assert back["state"] == "bot" and back["messages"][-1]["text"] == EN["handback"]
    missing = client.post("/agent/api/conversations/nope/assign")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "unknown_conversation"
    foreign = client.post(f"/agent/api/conversations/{cid}/resolve", headers={"origin": "https://evil.example"})
    assert foreign.status_code == 403 and engine.store.get_conversation(cid).status == "open"

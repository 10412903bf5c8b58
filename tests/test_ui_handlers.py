"""The pages' handlers through Gradio's own Python client against a live server: the customer chat, the agent
console (approve, edit, reject, double approval, handoff reply) and the admin page (figures, refusals; its FAQ
upload and Model tab are in test_ui_admin.py), with the login cookie where the page needs one."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

from ui.auth import COOKIE
from ui.render import ARRIVED, RATEABLE


def plain(markdown: str) -> str:
    """Markdown with its backslash escapes removed (what the reader sees)."""
    return markdown.replace("\\", "")


def texts(history: list[dict]) -> list[str]:
    return ["".join(part["text"] for part in row["content"] if part.get("type") == "text") for row in history]


@pytest.fixture
def customer(live_reset):
    return Client(live_reset.url + "/", verbose=False)


def console(live, name: str, page: str = "agent") -> Client:
    return Client(f"{live.url}/{page}/", verbose=False, headers={"Cookie": f"{COOKIE}={live.login(name)}"})


def cid(token: str) -> str:
    """The conversation id in the chat page's conversation token (`<id>:<secret>`)."""
    return token.partition(":")[0]


def ask(customer: Client, text: str, conversation_id: str = "") -> tuple[list, str, int]:
    """Send a message; returns the final history, the conversation id and how many updates streamed in."""
    job = customer.submit(text, conversation_id, api_name="/send")
    job.result()  # raises AppError with the handler's message when the message is refused
    updates = job.outputs()
    history, conversation_id, _ = updates[-1]
    return history, conversation_id, len(updates)


def test_customer_reply_streams_with_its_source(customer):
    history, conversation_id, updates = ask(customer, "How do I track my order?")
    # the answer has two sentences; each is shown once it has been checked (plus the question and the sources)
    assert updates >= 4, "the reply should arrive sentence by sentence, not at once"
    shown = texts(history)
    assert shown[0] == "How do I track my order?" and "Track" in shown[1]
    sources = [row["metadata"]["title"] for row in history if row.get("metadata")]
    assert sources[0] == "Source: How can I track my order?"
    restored = customer.predict(conversation_id, api_name="/restore")
    assert texts(restored[0]) == shown and restored[1] == conversation_id  # kept across a reload


def test_customer_text_is_never_markup(customer):
    history, _, _ = ask(customer, "<script>alert(1)</script><img src=x onerror=alert(2)>")
    assert texts(history)[0] == "&lt;script&gt;alert\\(1\\)&lt;/script&gt;&lt;img src=x onerror=alert\\(2\\)&gt;"


@pytest.mark.parametrize("text, needle", [("", "empty"), ("   \n ", "empty"), ("y" * 4001, "too long")])
def test_bad_messages_get_a_clear_error(customer, text, needle):
    with pytest.raises(AppError, match=needle):
        ask(customer, text)


def test_talk_to_a_person_and_the_agent_reply_arrives(customer, live_reset):
    _, conversation_id, _ = ask(customer, "Hello there, I have a question")
    history, conversation_id = customer.predict(conversation_id, api_name="/talk_to_person")
    assert "colleague" in texts(history)[-1]

    agent = console(live_reset, "ann")
    inbox = agent.predict("Waiting", "", "", "", api_name="/inbox")[0]
    assert cid(conversation_id) in [value for _, value in inbox["choices"]]
    agent.predict(cid(conversation_id), "Hi, Ann here. How can I help?", api_name="/reply")
    history = customer.predict(conversation_id, api_name="/poll")  # the page's timer
    assert texts(history)[-1] == f"👤 *Support team:* Hi, Ann here. How can I help?{RATEABLE}{ARRIVED}"


def test_agent_approves_a_draft_once_and_the_customer_sees_it(customer, live_reset):
    live_reset.engine.config.routing.mode = "draft_only"
    history, conversation_id, _ = ask(customer, "How do I track my order?")
    assert texts(history)[-1].startswith("⏳ ")
    draft_id = live_reset.engine.store.pending_drafts()[-1].id

    ann, ada = console(live_reset, "ann"), console(live_reset, "ada")
    # the console's /open outputs: conversation, status, header, typing, chat, draft details, draft text, draft ref
    *_, conversation, details, draft_text, ref = ann.predict(cid(conversation_id), api_name="/open")
    assert "How can I track my order?** (track\\_order, score 0.89)" in details and "language **en**" in details
    assert "Track" in draft_text and ref.startswith(f"{draft_id}|")
    assert texts(conversation)[0].endswith("How do I track my order?")
    ada_ref = ada.predict(cid(conversation_id), api_name="/open")[-1]
    assert ann.predict(ref, api_name="/approve") == f"Draft #{draft_id} sent by ann."
    second = plain(ada.predict(ada_ref, api_name="/approve"))
    assert "changed since you opened it (it was approved by ann); nothing was sent" in second
    sent = [m for m in live_reset.engine.store.messages(cid(conversation_id)) if m.role == "agent"]
    assert len(sent) == 1

    restored = customer.predict(conversation_id, api_name="/restore")
    assert texts(restored[0])[-1].startswith("👤 *Support team:* Open My Orders")


def test_agent_edits_or_rejects_drafts(customer, live_reset):
    live_reset.engine.config.routing.mode = "draft_only"
    _, first, _ = ask(customer, "How do I track my order?")
    _, second, _ = ask(customer, "How do I cancel my order?")
    drafts = {d.conversation_id: d.id for d in live_reset.engine.store.pending_drafts()}
    ann = console(live_reset, "ann")
    first, second = cid(first), cid(second)
    refs = {c: ann.predict(c, api_name="/open")[-1] for c in (first, second)}  # the draft on screen: "<id>|<version>"
    assert "edited reply is empty" in ann.predict(refs[first], "   ", api_name="/send_edited")
    assert ann.predict(refs[first], "Use the Track button.", api_name="/send_edited").endswith("sent by ann.")
    assert live_reset.engine.store.draft(drafts[first]).state == "edited"
    assert "give a reason" in ann.predict(refs[second], "", api_name="/reject")
    assert "waits for a person" in ann.predict(refs[second], "wrong policy", api_name="/reject")
    assert any(h["conversation_id"] == second for h in live_reset.engine.store.open_handoffs())


def test_agent_cannot_call_admin_actions(live_reset):
    with pytest.raises(ValueError, match="Could not fetch config"):
        console(live_reset, "ann", page="admin")
    cookies = live_reset.cookies("ann")
    for path in ("/admin/gradio_api/call/build_faq", "/admin/gradio_api/queue/join", "/admin/gradio_api/upload"):
        refused = httpx.post(live_reset.url + path, json={"data": []}, cookies=cookies)
        assert refused.status_code == 403 and "may not use admin pages" in refused.json()["detail"]


def test_admin_figures(live_reset, customer):
    ask(customer, "How do I track my order?")
    admin = console(live_reset, "ada", page="admin")
    summary, day_plot, route_plot, unanswered = admin.predict(api_name="/figures")
    assert "answered" in summary and "messages" in summary
    for plot in (day_plot, route_plot):  # two drawn matplotlib figures, as images
        assert plot["type"] == "matplotlib" and plot["plot"].startswith("data:image/") and len(plot["plot"]) > 2000


def test_stop_button_cancels_the_reply_and_keeps_what_was_shown(customer, live_reset):
    live_reset.backend.queue("Open My Orders and press Track. " * 60)  # long: it streams for seconds
    job = customer.submit("How do I track my order?", "", api_name="/send")
    deadline = time.monotonic() + 10
    while len(job.outputs()) < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    conversation_id = job.outputs()[-1][1]
    customer.predict(conversation_id, api_name="/stop")
    started = time.monotonic()
    job.result()
    assert time.monotonic() - started < 3, "the stop button should end the reply at once"
    last = texts(job.outputs()[-1][0])[1]
    assert last.endswith(f"*(stopped)*{RATEABLE}") and len(last) < len("Open My Orders and press Track. " * 60)
    reply = [m for m in live_reset.engine.store.messages(cid(conversation_id)) if m.role == "bot"][-1]
    assert reply.status == "cancelled"


def test_thumbs_rate_the_reply_even_from_its_source_rows(engine):
    from ui.customer import CustomerChat

    chat = CustomerChat(engine)
    conversation_id = engine.start_conversation()
    reply = engine.reply(conversation_id, "How do I track my order?")
    view = chat.render(conversation_id)
    source_row = max(i for i, row in enumerate(view.history) if row.get("metadata"))
    assert chat.rate(view.message_ids, source_row, "Like") == "Thanks for the feedback!"
    assert chat.rate(view.message_ids, 1, "Dislike") == "Thanks for the feedback!"
    assert chat.rate(view.message_ids, 0, "Like") == "Only answers from the bot and the team can be rated."
    assert chat.rate(view.message_ids, 99, "Like") == ""
    stats = engine.store.stats()
    assert (stats["thumbs_up"], stats["thumbs_down"]) == (0, 1)  # the later thumb on the same reply replaces the first
    assert view.message_ids[1] == reply.message_id


def test_admin_check_refuses_oversized_files(engine, tmp_path, monkeypatch):
    from ui import admin

    monkeypatch.setattr(admin, "MAX_FAQ_BYTES", 1000)
    big = tmp_path / "big.jsonl"
    big.write_text(json.dumps({"id": "a", "question": "q?", "answer": "x" * 2000}) + "\n", encoding="utf-8")
    report, diff, path = admin.AdminPage(engine).check_upload(str(big))
    assert "the limit is" in report and "unchanged" in report and path is None and diff == ""
    report, _, path = admin.AdminPage(engine).check_upload(None)
    assert "Upload a" in report and path is None


def test_admin_adapter_that_does_not_load_leaves_the_served_one_recorded(engine, chatbot_home, tmp_path, monkeypatch):
    from chatbot.adapters import active_record, register
    from tests.test_training_adapters import fake_output
    from ui import admin

    monkeypatch.setattr("chatbot.adapters.shipped_adapter", lambda: None)
    page = admin.AdminPage(engine)
    register(fake_output(tmp_path / "good", 5.0))
    register(fake_output(tmp_path / "broken", 4.0))
    page.activate_adapter("good")

    def refuse(path_or_name):
        raise ValueError(f"{path_or_name}: size mismatch for lora_A")

    monkeypatch.setattr(engine.backend, "set_adapter", refuse)
    message = page.activate_adapter("broken")
    assert message.startswith("❌") and "size mismatch" in message
    assert active_record()["name"] == "good"

"""The HTTP API through the official `openai` client against a live uvicorn server: plain and streamed
completions with the route and sources, conversations, bad input, health, and FAQ reloads under load."""

from __future__ import annotations

import json
import threading

import httpx
import openai
import pytest

from knowledge_base.kb import demo_faq_path


@pytest.fixture
def client(live_reset):
    return openai.OpenAI(base_url=live_reset.url + "/v1", api_key="unused", max_retries=0, timeout=30)


def test_models(client):
    assert [m.id for m in client.models.list()] == ["support-bot"]


def test_plain_completion_carries_route_and_sources(client, live_reset):
    completion = client.chat.completions.create(
        model="support-bot", messages=[{"role": "user", "content": "How do I track my order?"}]
    )
    text = completion.choices[0].message.content
    extra = completion.model_extra["chatbot"]
    assert extra["route"] == "answer" and extra["grounded"] is True
    assert extra["sources"][0]["faq_id"] == "track_order" and 0 < extra["sources"][0]["score"] <= 1
    assert text == extra["text"] and "Track" in text
    stored = live_reset.engine.store.messages(extra["conversation_id"])
    assert [m.role for m in stored] == ["user", "bot"] and stored[-1].id == extra["message_id"]


def test_streamed_completion_arrives_in_pieces(client):
    stream = client.chat.completions.create(
        model="support-bot", stream=True, messages=[{"role": "user", "content": "How do I track my order?"}]
    )
    pieces, extra, finish = [], None, None
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            pieces.append(chunk.choices[0].delta.content)
        if chunk.choices and chunk.choices[0].finish_reason:
            finish = chunk.choices[0].finish_reason
            extra = chunk.model_extra["chatbot"]
    assert len(pieces) >= 2, "the reply should stream sentence by sentence (each one checked before it is sent)"
    assert finish == "stop" and extra["route"] == "answer"
    assert "".join(pieces).strip() == extra["text"]
    assert extra["sources"][0]["question"] == "How can I track my order?"


def test_conversation_continues_with_its_id(client, live_reset):
    first = client.chat.completions.create(model="support-bot", messages=[{"role": "user", "content": "Hello"}])
    conversation_id = first.model_extra["chatbot"]["conversation_id"]
    secret = first.model_extra["chatbot"]["conversation_secret"]
    second = client.chat.completions.create(
        model="support-bot",
        messages=[{"role": "user", "content": "How do I track my order?"}],
        extra_body={"conversation_id": conversation_id, "conversation_secret": secret},
    )
    assert second.model_extra["chatbot"]["conversation_id"] == conversation_id
    assert [m.role for m in live_reset.engine.store.messages(conversation_id)].count("user") == 2


def test_a_person_request_is_handed_off(client):
    completion = client.chat.completions.create(
        model="support-bot", messages=[{"role": "user", "content": "I want to talk to a human agent please"}]
    )
    assert completion.model_extra["chatbot"]["route"] == "handoff"
    assert "colleague" in completion.choices[0].message.content


def test_a_held_draft_never_reaches_the_api_client(client, live_reset):
    live_reset.engine.config.routing.mode = "draft_only"  # every reply is held for an agent
    completion = client.chat.completions.create(
        model="support-bot", messages=[{"role": "user", "content": "How do I track my order?"}]
    )
    extra = completion.model_extra["chatbot"]
    assert extra["route"] == "draft" and "reply" not in extra
    drafts = live_reset.engine.store.conversation_drafts(extra["conversation_id"])
    assert drafts and drafts[0].text not in json.dumps(completion.model_dump(), ensure_ascii=False)
    assert completion.choices[0].message.content == extra["text"]


@pytest.mark.parametrize(
    "messages, error, needle",
    [
        ([{"role": "user", "content": "   "}], openai.BadRequestError, "empty"),
        ([{"role": "user", "content": "x" * 5000}], openai.BadRequestError, "too long"),
        ([{"role": "system", "content": "hi"}], openai.BadRequestError, "user message"),
    ],
)
def test_bad_input_gets_a_clear_error(client, messages, error, needle):
    with pytest.raises(error) as caught:
        client.chat.completions.create(model="support-bot", messages=messages)
    assert needle in str(caught.value)


def test_unknown_conversation_is_404(client):
    with pytest.raises(openai.NotFoundError, match="unknown conversation"):
        client.chat.completions.create(model="support-bot", messages=[{"role": "user", "content": "hi there"}],
                                       extra_body={"conversation_id": "nope"})  # fmt: skip


def test_health(live_reset):
    health = httpx.get(live_reset.url + "/api/health").json()
    assert health["status"] == "ok" and health["model_loaded"] is True
    assert health["index_version"] == live_reset.engine.kb.current_version
    assert {"queue_depth", "active_chats", "adapter"} <= set(health)


def test_reload_while_customers_chat_loses_no_request(client, live_reset, chatbot_home, monkeypatch):
    monkeypatch.setenv("CHATBOT_ADMIN_TOKEN", "tok")
    kb = live_reset.engine.kb
    before = kb.current_version
    lines = demo_faq_path().read_text(encoding="utf-8").splitlines()
    (chatbot_home / "import").mkdir()
    edited = chatbot_home / "import" / "faq.jsonl"
    entry = json.loads(lines[0])
    entry["answer"] += " (updated)"
    edited.write_text("\n".join([json.dumps(entry), *lines[1:]]) + "\n", encoding="utf-8")
    results, errors = [], []

    def customer() -> None:
        try:
            for _ in range(3):
                stream = client.chat.completions.create(
                    model="support-bot", stream=True, messages=[{"role": "user", "content": "How do I track my order?"}]
                )
                text, version = "", None
                for chunk in stream:
                    if chunk.choices and chunk.choices[0].delta.content:
                        text += chunk.choices[0].delta.content
                    if chunk.choices and chunk.choices[0].finish_reason:
                        version = chunk.model_extra["chatbot"]["index_version"]
                results.append((text, version))
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=customer) for _ in range(6)]
    for t in threads:
        t.start()
    built = httpx.post(live_reset.url + "/api/faq/reload", json={"path": str(edited)},
                       headers={"authorization": "Bearer tok"}, timeout=60)  # fmt: skip
    reloaded = httpx.post(live_reset.url + "/api/faq/reload", headers={"authorization": "Bearer tok"}, timeout=60)
    for t in threads:
        t.join(timeout=60)
    assert built.status_code == 200 and built.json()["changed"] and built.json()["previous"] == before
    assert reloaded.status_code == 200
    assert not errors and len(results) == 18
    assert all(text.strip() and version for text, version in results)
    kb.rollback(before)


def test_failed_faq_reload_leaves_the_old_faq_answering(client, live_reset, chatbot_home, monkeypatch):
    monkeypatch.setenv("CHATBOT_ADMIN_TOKEN", "tok")
    before = live_reset.engine.kb.current_version
    (chatbot_home / "import").mkdir()
    broken = chatbot_home / "import" / "broken.jsonl"
    broken.write_text('{"id": "a", "question": "q"}\nnot json\n', encoding="utf-8")
    response = httpx.post(live_reset.url + "/api/faq/reload", json={"path": str(broken)},
                          headers={"authorization": "Bearer tok"})  # fmt: skip
    assert response.status_code == 422
    problems = response.json()["error"]["problems"]
    assert [p["line"] for p in problems] == [1, 2]
    assert live_reset.engine.kb.current_version == before
    answer = client.chat.completions.create(model="support-bot", messages=[{"role": "user",
                                            "content": "How do I track my order?"}])  # fmt: skip
    assert answer.model_extra["chatbot"]["index_version"] == before
    assert answer.model_extra["chatbot"]["route"] == "answer"

"""The SQLite store: migrations, atomic draft review, handoffs, feedback, redaction, stats, users, sessions."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from chatbot.config import StoreConfig
from chatbot.store import (
    MIGRATIONS,
    ConversationClosedError,
    DraftStateError,
    NotFoundError,
    Store,
    StoreError,
)


@pytest.fixture
def store(chatbot_home):
    s = Store().warm_up()
    yield s
    s.close()


def _draft(store, text="Refunds take 14 days."):
    cid = store.create_conversation()
    _, _, draft_id = store.record_exchange(
        cid, "How long do refunds take?", {"language": "en"}, "A person will confirm.",
        {"kind": "notice", "route": "draft", "faq_ids": ["track_refund"], "scores": [0.5]},
        draft={"text": text, "sources": [{"faq_id": "track_refund", "score": 0.5}], "language": "en"},
    )  # fmt: skip
    return cid, draft_id


def test_file_is_in_chatbot_home_with_wal_and_migrations(store, chatbot_home):
    assert store.path == chatbot_home / "chatbot.sqlite3"
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.applied_migrations() == [name for name, _ in MIGRATIONS]
    store.close()
    assert Store().warm_up().applied_migrations() == [name for name, _ in MIGRATIONS]  # reopening re-runs nothing


def test_messages_in_order_and_after_id(store):
    cid = store.create_conversation()
    a = store.add_message(cid, "user", "hello")
    b = store.add_message(cid, "bot", "hi", route="answer", faq_ids=["x"], index_version="v1", adapter="lora1",
                          timings={"total": 0.5}, language="en", grounded=True)  # fmt: skip
    assert [m.id for m in store.messages(cid)] == [a, b]
    (last,) = store.messages(cid, after_id=a)
    assert last.faq_ids == ("x",) and last.index_version == "v1" and last.adapter == "lora1"
    assert last.timings == {"total": 0.5} and last.grounded is True


def test_approve_twice_sends_once(store):
    cid, draft_id = _draft(store)
    store.approve_draft(draft_id, "ann")
    with pytest.raises(DraftStateError, match="already approved by ann"):
        store.approve_draft(draft_id, "bob")
    assert [m.role for m in store.messages(cid)].count("agent") == 1
    assert store.draft(draft_id).state == "approved"


def test_two_agents_approving_at_once_send_one_message(store):
    cid, draft_id = _draft(store)
    outcomes = []

    def approve(agent):
        try:
            outcomes.append(store.approve_draft(draft_id, agent))
        except DraftStateError as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=approve, args=(f"agent{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(isinstance(o, int) for o in outcomes) == 1
    assert [m.role for m in store.messages(cid)].count("agent") == 1


def test_edit_then_send_is_recorded_as_edited(store):
    cid, draft_id = _draft(store)
    store.approve_draft(draft_id, "ann", text="Refunds take 14 days after we receive the item.")
    draft = store.draft(draft_id)
    assert draft.state == "edited" and draft.final_text.endswith("receive the item.")
    assert store.messages(cid)[-1].text == draft.final_text
    example = store.reviewed_examples()[0]
    assert example["source"] == "edited" and example["messages"][-1]["content"] == draft.final_text


def test_reject_hands_off(store):
    cid, draft_id = _draft(store)
    store.reject_draft(draft_id, "ann", "wrong policy")
    assert store.draft(draft_id).state == "rejected"
    assert store.get_conversation(cid).status == "handoff"
    assert store.open_handoffs()[0]["reason"].endswith("wrong policy")
    with pytest.raises(DraftStateError):
        store.approve_draft(draft_id, "bob")


def test_pending_drafts_oldest_first_with_context(store):
    first = _draft(store)[1]
    second = _draft(store)[1]
    pending = store.pending_drafts()
    assert [d.id for d in pending] == [first, second]
    assert pending[0].context[-1].text == "How long do refunds take?"


def test_agent_reply_and_handoff_resolution(store):
    cid = store.create_conversation()
    store.hand_off(cid, "asked for a person", notice="A person will reply.")
    assert [h["conversation_id"] for h in store.open_handoffs()] == [cid]
    store.agent_reply(cid, "ann", "Hello, I'm Ann.")
    store.resolve_handoff(cid, "ann")
    assert store.open_handoffs() == [] and store.get_conversation(cid).status == "open"
    with pytest.raises(StoreError):
        store.agent_reply(cid, "ann", "   ")


def test_closed_and_unknown_conversations(store):
    cid = store.create_conversation()
    store.close_conversation(cid)
    with pytest.raises(ConversationClosedError):
        store.add_message(cid, "user", "hello?")
    with pytest.raises(NotFoundError):
        store.messages("missing")


def test_failed_transaction_writes_nothing(store):
    cid = store.create_conversation()
    with pytest.raises(sqlite3.IntegrityError):
        store.record_exchange(cid, "question", {}, "reply", {"kind": "bogus"})
    assert store.messages(cid) == []


def test_redaction_switch(chatbot_home):
    on = Store(StoreConfig(path="on.sqlite3")).warm_up()
    off = Store(StoreConfig(path="off.sqlite3", redact=False)).warm_up()
    for s in (on, off):
        cid = s.create_conversation()
        s.add_message(cid, "user", "I am jane@example.com, card 4111 1111 1111 1111")
    assert (
        on.messages(on.db.execute("SELECT id FROM conversations").fetchone()[0])[0].text == "I am [EMAIL], card [CARD]"
    )
    assert "jane@example.com" in off.messages(off.db.execute("SELECT id FROM conversations").fetchone()[0])[0].text


def test_feedback_and_stats(store):
    cid = store.create_conversation()
    store.record_exchange(cid, "refund?", {}, "Within 30 days.", {"route": "answer", "faq_ids": ["get_refund"]})
    store.record_exchange(cid, "Can I pay in bitcoin?", {}, "Passing you on.",
                          {"kind": "notice", "route": "handoff"}, handoff_reason="no good source")  # fmt: skip
    store.record_exchange(cid, "can i pay in bitcoin?", {}, "Passing you on.",
                          {"kind": "notice", "route": "handoff"}, handoff_reason="no good source")  # fmt: skip
    answer = store.recent_auto_sent()[0]
    store.add_feedback(answer.id, up=True)
    store.add_feedback(answer.id, up=False, comment="too short")
    _, draft_id = _draft(store)
    store.approve_draft(draft_id, "ann", text="edited text")
    stats = store.stats()
    assert stats["routes"] == {"answer": 1, "draft": 1, "handoff": 2}
    assert stats["route_share"]["handoff"] == 0.5
    assert stats["thumbs_up"] == 1 and stats["thumbs_down"] == 1
    assert stats["approval_rate"] == 1.0 and stats["edit_rate"] == 1.0
    assert stats["top_unanswered"][0]["n"] == 2
    assert stats["per_day"][0]["conversations"] == 2
    with pytest.raises(NotFoundError):
        store.add_feedback(999, up=True)


def test_users_and_sessions(store):
    store.add_user("ann", "agent", "correct horse")
    with pytest.raises(StoreError, match="already exists"):
        store.add_user("ann", "admin", "another password")
    with pytest.raises(StoreError, match="8 characters"):
        store.add_user("bob", "agent", "short")
    assert store.authenticate("ann", "wrong password") is None
    user = store.authenticate("ann", "correct horse")
    assert user.role == "agent"
    assert "correct horse" not in store.db.execute("SELECT password_hash FROM users").fetchone()[0]
    token = store.create_session("ann", ttl_s=60)
    assert store.session_user(token).name == "ann"
    expired = store.create_session("ann", ttl_s=-1)
    assert store.session_user(expired) is None
    store.delete_session(token)
    assert store.session_user(token) is None


def test_use_before_warm_up(chatbot_home):
    with pytest.raises(StoreError, match="warm_up"):
        Store().create_conversation()

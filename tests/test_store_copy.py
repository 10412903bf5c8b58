"""`chatbot store copy`: a SQLite store moved into PostgreSQL (and back) keeps every conversation, review, user,
session and the conversation key; a target that is not empty, or on other migrations, is refused."""

from __future__ import annotations

import pytest

from chatbot.config import StoreConfig
from chatbot.store import Store, StoreError, copy_store
from cli.store import copy_command


def _fill(store: Store) -> tuple[str, str]:
    store.add_user("ann", "agent", "correct horse")
    token = store.create_session("ann", 3600)
    cid = store.create_conversation(language="en")
    _, answer_id, _ = store.record_exchange(cid, "refund?", {"language": "en"}, "Within 30 days.",
                                            {"route": "answer", "faq_ids": ["refund"], "scores": [0.8],
                                             "timings": {"total": 0.5}})  # fmt: skip
    store.add_feedback(answer_id, up=True)
    _, _, draft_id = store.record_exchange(
        cid, "and for sale items?", {"language": "en"}, "A person will confirm.", {"kind": "notice", "route": "draft"},
        draft={"text": "Sale items too.", "sources": [{"faq_id": "refund", "score": 0.6}], "language": "en"},
    )  # fmt: skip
    store.approve_draft(draft_id, "ann", text="Sale items within 14 days.")
    store.hand_off(cid, "asked for a person")
    return cid, token


def test_a_sqlite_store_copied_into_postgres_works_there(chatbot_home, postgres_url, capsys):
    source = Store().warm_up()  # the configured store: SQLite in $CHATBOT_HOME
    cid, token = _fill(source)
    secret = source.conversation_secret(cid)

    assert copy_command(postgres_url) == 0
    assert "messages: 5 rows" in capsys.readouterr().out

    target = Store(StoreConfig(url=postgres_url)).warm_up()
    assert target.messages(cid) == source.messages(cid)
    assert target.conversation_drafts(cid) == source.conversation_drafts(cid)
    assert target.open_handoffs() == source.open_handoffs() and target.stats() == source.stats()
    assert target.check_secret(cid, secret)  # the customer's page keeps its conversation
    assert target.session_user(token).name == "ann" and target.authenticate("ann", "correct horse")
    assert target.add_message(cid, "user", "thanks") > max(m.id for m in source.messages(cid))  # ids go on

    assert copy_command(postgres_url) == 1  # not into a store with conversations
    assert "already has conversations or users" in capsys.readouterr().err
    target.close()
    source.close()


def test_postgres_back_into_a_new_sqlite_file(chatbot_home, postgres_url):
    source = Store(StoreConfig(url=postgres_url)).warm_up()
    cid, _ = _fill(source)
    target = Store(StoreConfig(url="sqlite:///back.sqlite3")).warm_up()
    counts = copy_store(source, target)
    assert counts["conversations"] == 1 and counts["users"] == 1 and counts["drafts"] == 1
    assert target.messages(cid) == source.messages(cid) and target.path == chatbot_home / "back.sqlite3"
    source.close()
    target.close()


def test_stores_on_other_migrations_are_refused(chatbot_home, store_url):
    source = Store(StoreConfig(url="sqlite:///source.sqlite3")).warm_up()
    target = Store(StoreConfig(url=store_url)).warm_up()
    with source.transaction() as db:
        db.execute("DELETE FROM _migrations WHERE name = 'm103_worker_state'")
    with pytest.raises(StoreError, match="different migrations"):
        copy_store(source, target)
    assert target.read("SELECT COUNT(*) FROM conversations")[0][0] == 0
    source.close()
    target.close()

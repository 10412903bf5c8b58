"""Several processes on one store (issue 13): two workers racing to review the same drafts send each reply once,
and two workers opening an empty PostgreSQL database at once run the migrations once. Real processes (spawn), on
SQLite and on PostgreSQL."""

from __future__ import annotations

import multiprocessing

import pytest

from chatbot.config import StoreConfig
from chatbot.store import MIGRATIONS, DraftStateError, Store

DRAFTS = 30


def _review(url: str | None, draft_ids: list[int], verb: str, agent: str, start, results) -> None:
    """A worker: opens the store, waits for the other one, then reviews every draft as fast as it can."""
    store = Store(StoreConfig(url=url)).warm_up()
    start.wait(timeout=60)
    won = []
    for draft_id in draft_ids:
        try:
            if verb == "approve":
                store.approve_draft(draft_id, agent)
            else:
                store.reject_draft(draft_id, agent, "not our policy")
            won.append(draft_id)
        except DraftStateError:
            pass
    store.close()
    results.put((agent, won))


def _warm_up(url: str, start, results) -> None:
    start.wait(timeout=60)
    store = Store(StoreConfig(url=url)).warm_up()
    results.put(store.applied_migrations())
    store.close()


def _run(target, args_per_process: list[tuple]) -> list:
    spawn = multiprocessing.get_context("spawn")
    start, results = spawn.Barrier(len(args_per_process)), spawn.Queue()
    processes = [spawn.Process(target=target, args=(*args, start, results)) for args in args_per_process]
    for p in processes:
        p.start()
    out = [results.get(timeout=120) for _ in processes]
    for p in processes:
        p.join(timeout=60)
        assert p.exitcode == 0
    return out


@pytest.mark.parametrize(
    "verbs", [("approve", "approve"), ("approve", "reject")], ids=["both-approve", "approve-reject"]
)
def test_two_processes_reviewing_the_same_drafts_send_each_reply_once(chatbot_home, store_url, verbs):
    store = Store(StoreConfig(url=store_url)).warm_up()
    draft_ids = []
    for i in range(DRAFTS):
        cid = store.create_conversation()
        draft_ids.append(store.record_exchange(
            cid, f"Question {i}?", {"language": "en"}, "A person will confirm.", {"kind": "notice", "route": "draft"},
            draft={"text": f"Answer {i}.", "sources": [{"faq_id": "x", "score": 0.5}], "language": "en"},
        )[2])  # fmt: skip

    outcome = dict(_run(_review, [(store_url, draft_ids, verbs[0], "ann"), (store_url, draft_ids, verbs[1], "bob")]))

    assert sorted(outcome["ann"] + outcome["bob"]) == draft_ids  # each draft reviewed by exactly one of them
    for draft_id in draft_ids:
        draft = store.draft(draft_id)
        winner = "ann" if draft_id in outcome["ann"] else "bob"
        expected = verbs[0] if winner == "ann" else verbs[1]
        assert draft.agent == winner and draft.state == {"approve": "approved", "reject": "rejected"}[expected]
        sent = [m for m in store.messages(draft.conversation_id) if m.role == "agent"]
        assert [m.draft_id for m in sent] == ([draft_id] if expected == "approve" else [])
        assert draft.sent_message_id == (sent[0].id if sent else None)
    store.close()


def test_two_processes_opening_an_empty_postgres_database_migrate_it_once(chatbot_home, postgres_url):
    applied = _run(_warm_up, [(postgres_url,), (postgres_url,)])
    assert applied == [[name for name, _ in MIGRATIONS]] * 2

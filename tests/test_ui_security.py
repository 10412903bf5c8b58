"""The attack run of issue 17, replayed against a live server: each attack must now be refused."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from ui.auth import COOKIE


def gradio_call(live, page: str, api_name: str, data: list, cookie: str | None = None) -> tuple[str, str]:
    """`POST {page}/gradio_api/call/{api_name}` then read its event stream: `(last event, its data)`."""
    cookies = {COOKIE: cookie} if cookie else {}
    with httpx.Client(base_url=live.url, cookies=cookies, timeout=30) as client:
        started = client.post(f"{page}/gradio_api/call/{api_name}", json={"data": data})
        assert started.status_code == 200, started.text
        event_id = started.json()["event_id"]
        event, payload = "", ""
        with client.stream("GET", f"{page}/gradio_api/call/{api_name}/{event_id}") as stream:
            for line in stream.iter_lines():
                if line.startswith("event:"):
                    event = line.split(":", 1)[1].strip()
                elif line.startswith("data:"):
                    payload = line.split(":", 1)[1].strip()
                if event in ("complete", "error") and payload:
                    break
    return event, payload


def file_data(path: str | Path) -> dict:
    return {"path": str(path), "meta": {"_type": "gradio.FileData"}}


def cached_copies(name: str) -> list[Path]:
    from gradio.utils import get_upload_folder

    return list(Path(get_upload_folder()).rglob(name))


@pytest.mark.parametrize("target", ["/etc/passwd", "store"])
def test_admin_file_check_copies_no_server_file(live_reset, target):
    live = live_reset
    db_path = Path(live.engine.store.path)
    path = db_path if target == "store" else Path(target)
    before = cached_copies(path.name)
    event, payload = gradio_call(live, "/admin", "check_faq", [file_data(path)], live.login("ada"))
    assert event == "error", payload
    assert cached_copies(path.name) == before, "the file was copied into Gradio's cache"

    # The server's SQLite locks survive: an outside client that opens and closes the file leaves the WAL alone, and
    # a chat recorded afterwards is still there when the file is read from outside.
    conversation = live.engine.start_conversation(channel="api")
    live.engine.store.add_message(conversation, "user", "still here?")
    subprocess.run([sys.executable, "-c", f"import sqlite3; sqlite3.connect({str(db_path)!r}).execute('select 1')"],
                   check=True)  # fmt: skip
    live.engine.store.add_message(conversation, "user", "written after the outside client")
    assert Path(str(db_path) + "-wal").exists()
    outside = sqlite3.connect(db_path)
    try:
        rows = outside.execute("SELECT text FROM messages WHERE conversation_id = ?", (conversation,)).fetchall()
    finally:
        outside.close()
    assert [r[0] for r in rows] == ["still here?", "written after the outside client"]


def test_admin_file_check_refuses_a_path_outside_the_upload_folder(engine, tmp_path):
    from ui import admin

    outside = tmp_path / "faq.jsonl"
    outside.write_text(json.dumps({"id": "a", "question": "q?", "answer": "a."}) + "\n", encoding="utf-8")
    report, diff, path = admin.AdminPage(engine, uploads=tmp_path / "uploads").check_upload(str(outside))
    assert "Only files uploaded on this page" in report and path is None and diff == ""


def test_a_conversation_id_alone_opens_nothing(live_reset):
    """Item 3: restore, poll, send, talk_to_person and stop need the conversation's secret, not just its id."""
    from gradio_client import Client

    live = live_reset
    victim = Client(live.url + "/", verbose=False)
    job = victim.submit("My order 12345 is late, how do I track my order?", "", api_name="/send")
    job.result()
    token = job.outputs()[-1][1]
    conversation_id, _, secret = token.partition(":")
    assert len(secret) == 32 and live.engine.store.check_secret(conversation_id, secret)
    before = [m.text for m in live.engine.store.messages(conversation_id)]

    attacker = Client(live.url + "/", verbose=False)
    for forged in (conversation_id, f"{conversation_id}:", f"{conversation_id}:{'0' * 32}"):
        history, restored, *_ = attacker.predict(forged, api_name="/restore")
        assert history == [] and restored == ""
        assert "12345" not in str(attacker.predict(forged, api_name="/poll"))
        attacker.predict(forged, api_name="/stop")
        history, other = attacker.predict(forged, api_name="/talk_to_person")
        assert other.partition(":")[0] != conversation_id and "12345" not in str(history)
        job = attacker.submit("How do I cancel my order?", forged, api_name="/send")
        job.result()
        assert job.outputs()[-1][1].partition(":")[0] != conversation_id
    assert [m.text for m in live.engine.store.messages(conversation_id)] == before
    assert live.engine.store.get_conversation(conversation_id).status == "open"
    assert "12345" in str(victim.predict(token, api_name="/restore")[0])  # the secret holder still sees it


def test_v1_continues_a_conversation_only_with_its_secret(live_reset):
    with httpx.Client(base_url=live_reset.url, timeout=30) as client:
        first = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "Hello"}]})
        extra = first.json()["chatbot"]
        conversation_id, secret = extra["conversation_id"], extra["conversation_secret"]
        ask = {
            "messages": [{"role": "user", "content": "How do I track my order?"}],
            "conversation_id": conversation_id,
        }
        for forged in ({}, {"conversation_secret": "0" * 32}, {"conversation_secret": None}):
            refused = client.post("/v1/chat/completions", json={**ask, **forged})
            assert refused.status_code == 404 and "conversation_secret" in refused.json()["error"]["message"]
        assert len(live_reset.engine.store.messages(conversation_id)) == 2
        second = client.post("/v1/chat/completions", json={**ask, "conversation_secret": secret})
        assert second.status_code == 200 and "conversation_secret" not in second.json()["chatbot"]
    assert len(live_reset.engine.store.messages(conversation_id)) == 4

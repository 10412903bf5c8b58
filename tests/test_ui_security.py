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

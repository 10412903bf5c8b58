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
        # a question the bot answers (a greeting is handed to a person, and then the bot stays quiet)
        question = {"messages": [{"role": "user", "content": "How can I cancel my order?"}]}
        first = client.post("/v1/chat/completions", json=question)
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


def test_uploads_only_on_the_admin_page(live_reset):
    """Item 4: anonymous (and agent) uploads are refused before anything is written; admins' are capped."""
    from ui.admin import MAX_FAQ_BYTES

    live = live_reset
    files = {"files": ("faq.jsonl", b"x" * 2_000_000, "application/octet-stream")}
    with httpx.Client(base_url=live.url, timeout=30) as client:
        for path, cookie in (("/gradio_api/upload", None), ("/gradio_api/upload/", None),
                             ("/agent/gradio_api/upload", live.login("ann"))):  # fmt: skip
            refused = client.post(path, files=files, cookies={COOKIE: cookie} if cookie else {})
            assert refused.status_code == 403 and "admin page" in refused.json()["error"]["message"], path
        admin = {COOKIE: live.login("ada")}
        big = {"files": ("faq.jsonl", b"x" * (MAX_FAQ_BYTES + 1), "application/octet-stream")}
        assert client.post("/admin/gradio_api/upload", files=big, cookies=admin).status_code == 413
        ok = client.post("/admin/gradio_api/upload", files={"files": ("faq.jsonl", b"{}\n")}, cookies=admin)
        assert ok.status_code == 200 and ok.json()[0].endswith("faq.jsonl")
    assert live.app.state.blocks["admin"].delete_cache == (3600, 3600)


def test_v1_caps_body_size_and_message_count(live_reset):
    """Item 7: a 2 MB field, a big chunked body and too many messages get 413 with the limit named."""
    limits = live_reset.engine.config.limits
    with httpx.Client(base_url=live_reset.url, timeout=30) as client:
        huge = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "a" * 2_000_000}]})
        assert huge.status_code == 413 and "limits.max_body_bytes" in huge.json()["error"]["message"]

        def chunks():
            yield b'{"messages": [{"role": "user", "content": "'
            for _ in range(40):
                yield b"a" * 50_000
            yield b'"}]}'

        chunked = client.post("/v1/chat/completions", content=chunks(), headers={"content-type": "application/json"})
        assert chunked.status_code == 413
        many = [{"role": "user", "content": "hi"}] * (limits.max_messages + 1)
        refused = client.post("/v1/chat/completions", json={"messages": many})
        assert refused.status_code == 413 and "limits.max_messages" in refused.json()["error"]["message"]
        fine = client.post("/v1/chat/completions", json={"messages": many[: limits.max_messages]})
        assert fine.status_code == 200


@pytest.fixture
def reload(live_reset, monkeypatch):
    monkeypatch.setenv("CHATBOT_ADMIN_TOKEN", "tok")

    def post(path: str) -> httpx.Response:
        return httpx.post(live_reset.url + "/api/faq/reload", json={"path": path},
                          headers={"authorization": "Bearer tok"}, timeout=60)  # fmt: skip

    return post


def test_faq_reload_reports_the_first_problems_and_a_total(reload, chatbot_home):
    """Item 7: 20,000 duplicate ids give a short report, not megabytes."""
    (chatbot_home / "import").mkdir()
    line = json.dumps({"id": "same", "question": "Where is my parcel?", "answer": "On its way."})
    (chatbot_home / "import" / "dupes.jsonl").write_text((line + "\n") * 20_001, encoding="utf-8")
    response = reload("dupes.jsonl")
    error = response.json()["error"]
    assert response.status_code == 422 and error["total"] == 20_000 and len(error["problems"]) == 50
    assert "the first 50 listed" in error["message"] and len(response.content) < 20_000


def test_faq_reload_builds_only_from_the_import_folder(reload, live_reset, chatbot_home, tmp_path):
    """Item 10: no server path, no symlink, no file contents echoed."""
    before = live_reset.engine.kb.current_version
    folder = chatbot_home / "import"
    folder.mkdir()
    (folder / "passwd.csv").symlink_to("/etc/passwd")
    (folder / "linked").symlink_to(tmp_path)
    (tmp_path / "faq.jsonl").write_text(json.dumps({"id": "a", "question": "q?", "answer": "a."}) + "\n")
    for path in ("/etc/passwd", "../../README.md", str(Path(__file__).parents[1] / "README.md"), "passwd.csv",
                 "linked/faq.jsonl", str(folder / "passwd.csv")):  # fmt: skip
        refused = reload(path)
        assert refused.status_code == 400 and "import folder" in refused.json()["error"]["message"], path
        assert "root:" not in refused.text
    (folder / "notes.txt").write_text("id,question,answer\n")
    assert "unsupported FAQ file type" in reload("notes.txt").json()["error"]["message"]
    (folder / "secret.csv").write_text("root:x:0:0:root:/root:/bin/bash,question,answer\n", encoding="utf-8")
    echoed = reload("secret.csv")
    assert echoed.status_code == 422 and "root:x" not in echoed.text and "/bin/bash" not in echoed.text
    assert live_reset.engine.kb.current_version == before


def test_v1_beyond_the_queue_gets_a_quick_503(live_reset):
    """Item 15: with every reply slot taken, a new /v1 request is refused at once with Retry-After."""
    import time

    scheduler = live_reset.engine.config.scheduler
    saved = (scheduler.max_batch, scheduler.max_queue)
    scheduler.max_batch, scheduler.max_queue = 1, 0
    live_reset.backend.queue("Open My Orders and look " * 40)  # streams for a second or more
    ask = {"messages": [{"role": "user", "content": "How do I track my order?"}], "stream": True}
    try:
        with httpx.Client(base_url=live_reset.url, timeout=30) as client:
            with client.stream("POST", "/v1/chat/completions", json=ask) as first:
                lines = first.iter_lines()
                assert next(lines).startswith("data:")  # the first reply holds the only slot
                started = time.monotonic()
                busy = client.post("/v1/chat/completions", json=ask)
                assert time.monotonic() - started < 1.0
                assert busy.status_code == 503 and busy.headers["retry-after"] == "5"
                assert "retry" in busy.json()["error"]["message"]
                for _ in lines:
                    pass
            assert client.post("/v1/chat/completions", json={**ask, "stream": False}).status_code == 200
    finally:
        scheduler.max_batch, scheduler.max_queue = saved
    assert live_reset.app.state.active.n == 0


def test_unknown_user_names_cost_a_password_hash(engine, monkeypatch):
    """Item 8: a wrong name is checked against a dummy hash, so timing does not tell real names apart."""
    from chatbot import store as store_module

    engine.store.add_user("ann", "agent", "ann-password-1")
    checked = []
    real = store_module.verify_password
    monkeypatch.setattr(store_module, "verify_password", lambda p, h: checked.append(h) or real(p, h))
    assert engine.store.authenticate("nobody", "ann-password-1") is None
    assert engine.store.authenticate("ann", "wrong-password") is None
    assert engine.store.authenticate("ann", "ann-password-1").name == "ann"
    assert len(checked) == 3 and checked[0].startswith("scrypt$")


def test_fifty_wrong_passwords_lock_the_account_until_the_lock_ends(ui_app, engine):
    """Item 5: after limits.login_failures wrong passwords even the right one is refused, saying how long to wait,
    until the lock ends; the right one then works."""
    from fastapi.testclient import TestClient

    engine.store.add_user("ann", "agent", "ann-password-1")
    limits = engine.config.limits
    now = [0.0]
    ui_app.state.login_throttle.clock = lambda: now[0]

    def login(password: str, name: str = "ann"):
        return client.post("/login", data={"username": name, "password": password, "next": "/agent"},
                           follow_redirects=False)  # fmt: skip

    with TestClient(ui_app) as client:
        statuses = [login(f"guess-{i:02d}").status_code for i in range(50)]
        assert statuses == [401] * limits.login_failures + [429] * (50 - limits.login_failures)
        refused = login("ann-password-1")
        assert refused.status_code == 429 and COOKIE not in refused.cookies
        assert f"Too many attempts; try again in {limits.login_lockout_s} s." in refused.text
        assert refused.headers["retry-after"] == str(limits.login_lockout_s)
        now[0] += limits.login_lockout_s - 1
        assert "try again in 1 s" in login("ann-password-1").text
        now[0] += 1
        assert login("ann-password-1").status_code == 303

        # one address guessing many names is locked too, whatever the name (ann's success did not reset its count)
        names = [f"user{i}" for i in range(limits.login_address_failures - limits.login_failures)]
        assert {login("x-password", name).status_code for name in names} == {401}
        assert login("ann-password-1").status_code == 429


def test_agents_rejection_reasons_are_stored_redacted(engine):
    """Item 6: a rejection reason quoting the customer's card and e-mail is masked in drafts and handoffs."""
    store = engine.store
    conversation = store.create_conversation()
    _, _, draft_id = store.record_exchange(
        conversation, "Charge card 4111111111111111exp12/26 please", {}, "An agent will confirm.",
        {"kind": "notice", "route": "draft"}, draft={"text": "Done.", "sources": []},
    )  # fmt: skip
    reason = "customer gave 4111111111111111exp12/26, jane dot doe at mail dot example dot org, de89370400440532013000"
    store.reject_draft(draft_id, "ann", reason)
    stored = [store.draft(draft_id).reason, store.open_handoffs()[0]["reason"]]
    raw = [r[0] for table in ("drafts", "handoffs") for r in store._read(f"SELECT reason FROM {table}")]
    for text in stored + raw:
        assert "4111" not in text and "jane" not in text and "de89" not in text, text
        assert "[CARD]exp12/26" in text and "[EMAIL]" in text and "[ACCOUNT]" in text
    assert "[CARD]" in store.messages(conversation)[0].text


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ('{"messages": [{"role": "user", "content": "hi"}], "stream": 1e999}', "stream"),
        ('{"messages": [{"role": "user", "content": NaN}]}', "messages.0.content"),
        ('{"messages": [{"role": "user", "content": "hi"}], "conversation_id": -1e999}', "conversation_id"),
        ('{"messages": "hi"}', "messages"),
        ("[1]", "body"),
        ("{not json", "JSON decode error"),
    ],
)
def test_v1_bad_types_get_a_4xx_with_a_message(live_reset, body, field):
    """Item 11: `"stream": 1e999` was a 500 (FastAPI could not serialize the infinite value it echoed)."""
    response = httpx.post(live_reset.url + "/v1/chat/completions", content=body,
                          headers={"content-type": "application/json"}, timeout=30)  # fmt: skip
    error = response.json()["error"]
    assert response.status_code == 422 and error["code"] == "invalid_body"
    assert field in error["message"] and "inf" not in error["message"].lower()


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/gradio_api/call/nope", {"data": []}, 404),
        ("/gradio_api/call/v2/nope", {}, 404),
        ("/gradio_api/run/nope", {"data": []}, 404),
        ("/gradio_api/api/nope/", {"data": []}, 404),
        ("/gradio_api/queue/join", {"data": [], "fn_index": 999, "session_hash": "x"}, 404),
        ("/gradio_api/run/predict", {"data": [], "fn_index": 999, "session_hash": "x"}, 404),
        ("/gradio_api/queue/join", {"data": [], "api_name": "/nope", "session_hash": "x"}, 422),
        ("/gradio_api/queue/join", '{"data": [], "fn_index": 1e999, "session_hash": "x"}', 422),
        ("/gradio_api/queue/join", '{"data": [], "fn_index": "x", "session_hash": "x"}', 422),
        ("/agent/gradio_api/call/nope", {"data": []}, 404),
        ("/admin/gradio_api/queue/join", {"data": [], "fn_index": 999, "session_hash": "x"}, 404),
    ],
)
def test_unknown_gradio_endpoints_get_a_4xx(live_reset, capfd, path, body, status):
    """Item 11: an unknown api_name or fn_index was a 500 or a reset connection, with a traceback in the log."""
    cookies = {COOKIE: live_reset.login("ada")} if path.startswith(("/agent", "/admin")) else {}
    content = body if isinstance(body, str) else json.dumps(body)
    response = httpx.post(live_reset.url + path, content=content, cookies=cookies, timeout=30,
                          headers={"content-type": "application/json"})  # fmt: skip
    assert response.status_code == status and response.json()["detail"]
    assert "Traceback" not in capfd.readouterr().err
    anonymous = httpx.post(live_reset.url + path, content=content, timeout=30)
    assert anonymous.status_code == (401 if cookies else status)  # the login check comes first


def test_known_gradio_functions_still_run(live_reset):
    """The check lets the page's own calls through: `run/predict` (events that skip the queue) names its function
    by `fn_index` in the body, like `queue/join`."""
    blocks = live_reset.app.state.blocks["customer"]
    poll = next(i for i, fn in blocks.fns.items() if fn.api_name == "poll")
    body = {"data": [None] * len(blocks.fns[poll].inputs), "fn_index": poll, "session_hash": "known"}
    response = httpx.post(live_reset.url + "/gradio_api/run/predict", json=body, timeout=30)
    assert response.status_code == 200, response.text


def test_a_refused_customer_message_logs_one_line(live_reset, capfd, caplog):
    """Item 11: every refused message logged a traceback."""
    import logging

    from gradio_client import Client

    customer = Client(live_reset.url + "/", verbose=False)
    with caplog.at_level(logging.INFO, logger="ui.customer"), pytest.raises(Exception, match="too long"):
        customer.predict("x" * 5000, "", api_name="/send")
    assert "Traceback" not in capfd.readouterr().err
    lines = [r.getMessage() for r in caplog.records if r.name == "ui.customer"]
    assert lines == ["message refused (too_long): the message is too long (5000 characters; at most 4000); shorten it"]


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("see http://evil.example/a_b.", r"see [http\://evil\.example/a\_b](http://evil.example/a_b)\."),
        (
            "https://shop.example/wiki/Foo_(bar), ok",
            r"[https\://shop\.example/wiki/Foo\_\(bar\)](https://shop.example/wiki/Foo_\(bar\)), ok",
        ),
        (
            "HTTP://Shop.Example:8080/p?q=1&r=2#top",
            r"[HTTP\://Shop\.Example:8080/p?q=1&amp;r=2\#top](HTTP://Shop.Example:8080/p?q=1&r=2#top)",
        ),
        ("xhttp://evil.example", r"xhttp\://evil\.example"),  # not an address: not linked, not auto-linkable either
        ("[a](http://evil.example)", r"\[a\]\([http\://evil\.example](http://evil.example)\)"),
    ],
)
def test_auto_links_keep_no_escape_backslashes(text, shown):
    """Item 12: the renderer auto-linked escaped text, so the target read `http://evil%5C.example/...`. Addresses
    are explicit links now, to exactly the address written (the target's `\\(` is the renderer's escape of `(`);
    checked against marked 15, which Gradio's Chatbot uses: `<a href="http://evil.example/a_b">`."""
    from ui.render import as_text

    assert as_text(text) == shown


def gradio_root(app, path: str = "/config", cookies: dict | None = None, **headers: str) -> str:
    from fastapi.testclient import TestClient

    forged = {"x-forwarded-host": "evil.example", "x-gradio-server": "http://evil2.example", **headers}
    with TestClient(app, cookies=cookies or {}) as client:
        response = client.get(path, headers=forged)
    assert response.status_code == 200, response.text
    return response.json()["root"]


def test_gradio_root_is_not_taken_from_forwarded_headers(ui_app):
    """Item 12: `X-Forwarded-Host` was copied into the pages' `/config` `root` (the browser then calls that host)."""
    assert gradio_root(ui_app) == "http://testserver"


def test_a_configured_root_url_is_every_pages_root(engine):
    from ui.app import create_app

    engine.config.server.root_url = "https://Support.Example.com/"
    app = create_app(engine.config, engine)
    engine.store.add_user("ada", "admin", "ada-password-1")
    cookies = {COOKIE: engine.store.create_session("ada", 60)}
    assert gradio_root(app, host="evil.example") == "https://support.example.com"
    assert gradio_root(app, "/agent/config", cookies) == "https://support.example.com/agent"
    assert gradio_root(app, "/admin/config", cookies) == "https://support.example.com/admin"


@pytest.mark.parametrize(
    "field", [{"root_url": "support.example.com"}, {"root_url": "https://a.example/x"}, {"allowed_origins": ("*",)}]
)
def test_bad_site_settings_are_refused(field):
    from chatbot.config import ServerConfig

    with pytest.raises(ValueError, match="server.(root_url|allowed_origins)"):
        ServerConfig(**field)


def foreign_origin(live) -> str:
    """A page on another loopback port: the attack run's other origin."""
    return f"http://127.0.0.1:{int(live.url.rsplit(':', 1)[1]) + 1}"


def test_cross_site_logins_logouts_and_uploads_are_refused(live_reset):
    """Item 9: `POST /login` from another origin was accepted, `GET /logout` worked from any link, and a page on
    another loopback port uploaded into the admin cache."""
    live, evil = live_reset, foreign_origin(live_reset)
    form = {"username": "ann", "password": "ann-password-1", "next": "/agent"}
    with httpx.Client(base_url=live.url, timeout=30) as client:
        for headers in ({"origin": evil}, {"origin": "null"}, {"referer": evil + "/page"}):
            refused = client.post("/login", data=form, headers=headers)
            assert refused.status_code == 403 and "cross-site request" in refused.json()["error"]["message"]
            assert COOKIE not in refused.cookies
        ok = client.post("/login", data=form, headers={"origin": live.url})
        assert ok.status_code == 303 and COOKIE in ok.cookies

        session = {COOKIE: ok.cookies[COOKIE]}
        assert (
            'method="post" action="/logout"' in client.get("/logout", cookies=session).text
        )  # a link signs out no one
        assert client.post("/logout", cookies=session, headers={"origin": evil}).status_code == 403
        assert live.engine.store.session_user(session[COOKIE]).name == "ann"
        assert client.post("/logout", cookies=session, headers={"origin": live.url}).status_code == 303
        assert live.engine.store.session_user(session[COOKIE]) is None

        admin = {COOKIE: live.login("ada")}
        upload = {"files": ("faq.jsonl", b"{}\n")}
        before = cached_copies("faq.jsonl")
        refused = client.post("/admin/gradio_api/upload", files=upload, cookies=admin, headers={"origin": evil})
        assert refused.status_code == 403 and cached_copies("faq.jsonl") == before
        call = client.post("/agent/gradio_api/call/refresh", json={"data": [None, None, None]},
                           cookies={COOKIE: live.login("ann")}, headers={"origin": evil})  # fmt: skip
        assert call.status_code == 403
        assert client.post("/admin/gradio_api/upload", files=upload, cookies=admin,
                           headers={"origin": live.url}).status_code == 200  # fmt: skip


def test_gradio_does_not_echo_a_foreign_origin_with_credentials(live_reset):
    """Item 9: a page on another loopback port read `/agent/gradio_api/info` with credentials."""
    live, evil = live_reset, foreign_origin(live_reset)
    with httpx.Client(base_url=live.url, timeout=30, cookies={COOKIE: live.login("ann")}) as client:
        for path in ("/agent/gradio_api/info", "/gradio_api/info", "/config"):
            read = client.get(path, headers={"origin": evil})
            assert read.status_code == 200
            assert "access-control-allow-origin" not in read.headers, path
            assert "access-control-allow-credentials" not in read.headers, path
        preflight = client.options("/agent/gradio_api/upload", headers={
            "origin": evil, "access-control-request-method": "POST"})  # fmt: skip
        assert preflight.headers.get("access-control-allow-origin") != evil


def test_pages_say_who_may_frame_them(live_reset):
    """Item 9: no page sent CSP, X-Frame-Options or nosniff."""
    with httpx.Client(base_url=live_reset.url, timeout=30) as client:
        for path in ("/", "/login", "/agent/", "/v1/models", "/gradio_api/info"):
            headers = client.get(path, headers={"accept": "text/html"}).headers
            assert headers["content-security-policy"] == "frame-ancestors 'self'", path
            assert headers["x-frame-options"] == "SAMEORIGIN" and headers["x-content-type-options"] == "nosniff"


def test_allowed_origins_may_frame_the_chat_and_call_v1_but_not_the_console(engine):
    """Item 9: the website widget's sites ([server] allowed_origins) embed the chat; nobody else does."""
    from fastapi.testclient import TestClient

    from ui.app import create_app

    shop, evil = "https://shop.example", "https://evil.example"
    engine.config.server.allowed_origins = (shop,)
    app = create_app(engine.config, engine)
    engine.store.add_user("ann", "agent", "ann-password-1")
    ask = {"messages": [{"role": "user", "content": "How do I track my order?"}]}
    with TestClient(app) as client:
        chat = client.get("/", headers={"accept": "text/html"})
        assert chat.headers["content-security-policy"] == f"frame-ancestors 'self' {shop}"
        assert "x-frame-options" not in chat.headers
        console = client.get("/login")
        assert console.headers["content-security-policy"] == "frame-ancestors 'self'"

        allowed = client.post("/v1/chat/completions", json=ask, headers={"origin": shop})
        assert allowed.status_code == 200 and allowed.headers["access-control-allow-origin"] == shop
        assert "access-control-allow-credentials" not in allowed.headers
        preflight = client.options("/v1/chat/completions", headers={
            "origin": shop, "access-control-request-method": "POST"})  # fmt: skip
        assert preflight.status_code == 200 and preflight.headers["access-control-allow-origin"] == shop
        assert client.post("/v1/chat/completions", json=ask, headers={"origin": evil}).status_code == 403
        login = {"username": "ann", "password": "ann-password-1"}
        assert client.post("/login", data=login, headers={"origin": shop}).status_code == 403


EVIL_PAGE = """<!doctype html><html><body><script>
async function attack(target) {
  const out = {};
  try {
    const r = await fetch(target + "/agent/gradio_api/info", {credentials: "include"});
    out.info = (await r.text()).slice(0, 40);
  } catch (e) { out.info = "unreadable"; }
  try {
    const form = new FormData();
    form.append("files", new Blob(["{}\\n"]), "evil-upload.jsonl");
    await fetch(target + "/admin/gradio_api/upload", {method: "POST", body: form, credentials: "include"});
  } catch (e) {}
  return out;
}
</script></body></html>"""


@pytest.mark.browser
def test_a_page_on_another_port_can_neither_read_nor_upload_nor_log_in(browser, live_reset):
    """Item 9 in Chromium: a page on another loopback port read `/agent/gradio_api/info` with the agent's cookie and
    uploaded into the admin cache; a form on it could sign the browser in as someone else."""
    import http.server
    import threading

    from tests.fixtures_ui import PASSWORDS, free_port

    class Evil(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the handler's name
            body = EVIL_PAGE.encode()
            self.send_response(200)
            self.send_header("content-type", "text/html")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    live = live_reset
    evil = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Evil)
    threading.Thread(target=evil.serve_forever, daemon=True).start()
    context = browser.new_context()
    try:
        context.add_cookies([{"name": COOKIE, "value": live.login("ada"), "url": live.url, "httpOnly": True}])
        page = context.new_page()
        page.goto(f"http://127.0.0.1:{evil.server_address[1]}/")
        before = cached_copies("evil-upload.jsonl")
        assert page.evaluate("target => attack(target)", live.url) == {"info": "unreadable"}
        assert cached_copies("evil-upload.jsonl") == before

        with page.expect_navigation():
            page.evaluate("""([target, password]) => {
                const form = document.createElement("form");
                form.method = "post"; form.action = target + "/login";
                for (const [k, v] of [["username", "ann"], ["password", password], ["next", "/agent"]]) {
                    const input = document.createElement("input");
                    input.name = k; input.value = v; form.appendChild(input);
                }
                document.body.appendChild(form); form.submit();
            }""", [live.url, PASSWORDS["ann"]])  # fmt: skip
        assert "cross-site request" in page.content()
        sessions = [c["value"] for c in context.cookies(live.url) if c["name"] == COOKIE]
        assert [live.engine.store.session_user(s).name for s in sessions] == ["ada"]  # still ada, not ann
    finally:
        context.close()
        evil.shutdown()

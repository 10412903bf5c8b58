"""Accounts and sessions: nothing of /agent or /admin without a login, pages and Gradio API alike; agents cannot
reach admin actions; sessions expire; the admin token guards the FAQ reload."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from ui.auth import COOKIE

# Every kind of route Gradio serves under a mount: page, config, API info, queue, upload, files, static assets.
GRADIO_PATHS = [
    ("GET", ""),
    ("GET", "/"),
    ("GET", "/config"),
    ("GET", "/gradio_api/info"),
    ("GET", "/gradio_api/openapi.json"),
    ("POST", "/gradio_api/queue/join"),
    ("GET", "/gradio_api/queue/data?session_hash=x"),
    ("POST", "/gradio_api/upload"),
    ("POST", "/gradio_api/call/approve"),
    ("POST", "/gradio_api/run/predict"),
    ("GET", "/gradio_api/file=/etc/passwd"),
    ("GET", "/gradio_api/heartbeat/x"),
    ("GET", "/assets/index.js"),
    ("GET", "/theme.css"),
]


@pytest.fixture
def client(ui_app):
    with TestClient(ui_app) as c:
        yield c


def test_anonymous_requests_are_refused(client):
    let_through = []
    for prefix in ("/agent", "/admin"):
        for method, path in GRADIO_PATHS:
            response = client.request(method, prefix + path, follow_redirects=False)
            if response.status_code != 401 or "login required" not in response.json()["detail"]:
                let_through.append((method, prefix + path, response.status_code))
    assert not let_through


@pytest.mark.parametrize("prefix", ["/agent", "/admin"])
def test_anonymous_browser_is_sent_to_the_login_form(client, prefix):
    response = client.get(prefix + "/", headers={"accept": "text/html"}, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == f"/login?next=%2F{prefix[1:]}%2F"
    form = client.get(response.headers["location"])
    assert form.status_code == 200 and 'name="password"' in form.text


def login(client, name: str, password: str, target: str = "/agent"):
    return client.post("/login", data={"username": name, "password": password, "next": target},
                       follow_redirects=False)  # fmt: skip


def test_login_logout_and_roles(client, engine):
    engine.store.add_user("ann", "agent", "ann-password-1")
    engine.store.add_user("ada", "admin", "ada-password-1")

    wrong = login(client, "ann", "not-the-password")
    assert wrong.status_code == 401 and "Wrong user name or password" in wrong.text
    assert COOKIE not in wrong.cookies

    ok = login(client, "ann", "ann-password-1", "/admin/")
    assert ok.status_code == 303 and ok.headers["location"] == "/agent"  # an agent asking for /admin lands on /agent
    cookie = ok.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Max-Age=28800" in cookie
    assert client.get("/agent/config").status_code == 200
    # an agent cannot use admin pages or actions
    for method, path in [("GET", "/admin/config"), ("POST", "/admin/gradio_api/call/build_faq"),
                         ("POST", "/admin/gradio_api/upload")]:  # fmt: skip
        refused = client.request(method, path)
        assert refused.status_code == 403 and "may not use admin pages" in refused.json()["detail"]

    assert client.post("/logout", follow_redirects=False).status_code == 303
    assert client.get("/agent/config").status_code == 401

    assert login(client, "ada", "ada-password-1", "/admin/").headers["location"] == "/admin/"
    assert client.get("/admin/config").status_code == 200
    assert client.get("/agent/config").status_code == 200  # admins may work the queue too


def test_login_refuses_foreign_redirects(client, engine):
    engine.store.add_user("ann", "agent", "ann-password-1")
    response = login(client, "ann", "ann-password-1", "https://evil.example/")
    assert response.headers["location"] == "/agent"


def test_sessions_expire(client, engine):
    engine.store.add_user("ann", "agent", "ann-password-1")
    expired = engine.store.create_session("ann", -1)
    client.cookies.set(COOKIE, expired)
    assert client.get("/agent/config").status_code == 401
    client.cookies.set(COOKIE, "forged-token")
    assert client.get("/agent/config").status_code == 401
    client.cookies.set(COOKIE, engine.store.create_session("ann", 60))
    assert client.get("/agent/config").status_code == 200


def test_customer_chat_and_api_need_no_login(client):
    assert client.get("/", headers={"accept": "text/html"}).status_code == 200
    assert client.get("/config").status_code == 200
    assert client.get("/v1/models").json()["data"][0]["id"] == "support-bot"


def test_faq_reload_needs_the_admin_token(client, engine, monkeypatch):
    monkeypatch.delenv("CHATBOT_ADMIN_TOKEN", raising=False)
    off = client.post("/api/faq/reload")
    assert off.status_code == 404 and "off" in off.json()["error"]["message"]
    monkeypatch.setenv("CHATBOT_ADMIN_TOKEN", "s3cret-token")
    for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": "Basic s3cret-token"}):
        assert client.post("/api/faq/reload", headers=headers).status_code == 401
    ok = client.post("/api/faq/reload", headers={"authorization": "Bearer s3cret-token"})
    assert ok.status_code == 200
    assert ok.json()["index_version"] == engine.kb.current_version and ok.json()["entries"] > 10

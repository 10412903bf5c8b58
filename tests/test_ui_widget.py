"""The website widget: the script and its example page, the framed chat's headers (only the allowed sites may frame
it), and in real Chromium a shop page served from another port getting the chat bubble, chatting in it, and a site
that is not allowed getting nothing."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.fixtures_ui import ServerThread, chatbot_home_as, free_port, make_engine
from ui.widget import example_page, widget_script

SHOP_PORT = free_port()
SHOP = f"http://127.0.0.1:{SHOP_PORT}"
"""The shop's own site, listed in `[server] allowed_origins` (another port: another origin)."""


def test_the_script_knows_the_allowed_sites_and_speaks_every_page_language():
    script = widget_script(("https://shop.example", "http://127.0.0.1:9000"), "Acme")
    assert '["http://127.0.0.1:9000", "https://shop.example"]' in script
    labels = json.loads(script.split("const labels = ", 1)[1].split(";\n", 1)[0])
    assert set(labels) == {"en", "es", "fr", "de", "zh"}
    assert labels["zh"]["open_chat"] == "在线咨询" and labels["de"]["title"] == "Acme Kundenservice"
    assert "/widget/?lang=" in script


def test_nothing_in_the_script_can_close_it_early():
    script = widget_script(("https://shop.example",), "</script><script>alert(1)</script>")
    assert "</script" not in script


def test_the_example_page_shows_the_tag_to_copy_as_text():
    page = example_page("<Acme & Co>", "https://support.example/widget.js")
    assert "&lt;script src=&quot;https://support.example/widget.js&quot; async&gt;&lt;/script&gt;" in page
    assert "&lt;Acme &amp; Co&gt;" in page and "<Acme" not in page
    assert '<script src="/widget.js" async></script>' in page


@pytest.fixture
def widget_app(engine):
    from fastapi.testclient import TestClient

    from ui.app import create_app

    engine.config.server.allowed_origins = (SHOP,)
    with TestClient(create_app(engine.config, engine)) as client:
        yield client


def test_routes_and_frame_ancestors(widget_app):
    script = widget_app.get("/widget.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    assert SHOP in script.text and script.headers["cache-control"] == "public, max-age=300"
    framed = widget_app.get("/widget/")
    assert framed.status_code == 200
    assert framed.headers["content-security-policy"] == f"frame-ancestors 'self' {SHOP}"
    assert "x-frame-options" not in framed.headers  # it would forbid the shop's frame
    assert widget_app.get("/widget-example").text.count("/widget.js") == 2  # the tag shown, and used
    for private in ("/agent/", "/admin/", "/login"):
        assert widget_app.get(private).headers["content-security-policy"] == "frame-ancestors 'self'", private


def test_the_framed_chat_keeps_its_own_conversation(engine):
    from ui.app import create_app
    from ui.customer import STORAGE_KEY, WIDGET_STORAGE_KEY

    app = create_app(engine.config, engine)
    keys = {
        name: [c.storage_key for c in blocks.blocks.values() if type(c).__name__ == "BrowserState"]
        for name, blocks in app.state.blocks.items()
        if name in ("customer", "widget")
    }
    assert keys == {"customer": [STORAGE_KEY], "widget": [WIDGET_STORAGE_KEY]}


# -- in a real browser ----------------------------------------------------------------------------------------------
class Site:
    """A plain web server on its own port serving one page (a shop's page, or a site not allowed to frame the chat)."""

    def __init__(self, port: int, body: str):
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server name
                data = body.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def shop_page(chat_url: str, extra: str = "") -> str:
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Acme shop</title></head>'
            f'<body style="font-family: sans-serif; background: #f1f5f9"><h1>Acme: garden furniture</h1>'
            f"<p>Benches, tables and parasols, delivered in 3 days.</p>{extra}"
            f'<script src="{chat_url}/widget.js" async></script></body></html>')  # fmt: skip


@pytest.fixture(scope="module")
def chat_server(tmp_path_factory):
    from ui.app import create_app

    home = tmp_path_factory.mktemp("widget-home")
    with chatbot_home_as(home):
        engine, _ = make_engine(home, delay=0.02)
        engine.config.server.allowed_origins = (SHOP,)
        app = create_app(engine.config, engine)
    with ServerThread(app) as server:
        yield server, engine
    engine.close()


@pytest.fixture
def context(browser):
    ctx = browser.new_context(viewport={"width": 1100, "height": 780}, locale="en-US")
    ctx.set_default_timeout(15000)
    yield ctx
    ctx.close()


@pytest.mark.browser
def test_browser_the_widget_on_the_shops_own_page(chat_server, context, artifacts):
    server, engine = chat_server
    shop = Site(SHOP_PORT, shop_page(server.url))
    try:
        page = context.new_page()
        page.goto(shop.url + "/")
        bubble = page.get_by_role("button", name="Chat with us")
        bubble.wait_for()
        assert [f.url for f in page.frames[1:]] == ["about:blank"]  # nothing loads before the customer opens it
        bubble.click()
        page.get_by_role("button", name="Close the chat").wait_for()
        frame = page.frame_locator("#support-widget >> iframe")
        frame.locator("#customer-input textarea").fill("How do I track my order?")
        frame.locator("#customer-input textarea").press("Enter")
        frame.locator("text=Source: How can I track my order?").wait_for()
        assert "Track" in frame.locator('#customer-chat [data-testid="bot"]').first.inner_text()
        assert frame.locator("#chat-header").is_hidden()  # the shop's page has its own heading
        page.wait_for_timeout(500)
        page.screenshot(path=artifacts / "widget-open.png")

        # a team reply while the chat is closed: a dot on the bubble
        conversation_id = engine.store._read("SELECT id FROM conversations ORDER BY created_at DESC LIMIT 1")[0][0]
        page.get_by_role("button", name="Close the chat").click()
        engine.request_human(conversation_id)
        engine.store.agent_reply(conversation_id, "ann", "Hi, Ann here: your bench ships **today**.")
        page.locator("#support-widget .dot:not([hidden])").wait_for(timeout=8000)
        page.screenshot(path=artifacts / "widget-reply-dot.png")

        # its own conversation: the chat page at / knows nothing of it, the widget keeps it across a reload
        direct = context.new_page()
        direct.goto(server.url + "/")
        direct.wait_for_selector("#customer-input textarea")
        direct.wait_for_timeout(1000)
        assert direct.locator('#customer-chat [data-testid="user"]').count() == 0
        page.reload()
        page.get_by_role("button", name="Chat with us").click()
        frame = page.frame_locator("#support-widget >> iframe")
        frame.locator("text=Ann here").wait_for()
    finally:
        shop.close()


@pytest.mark.browser
def test_browser_a_site_that_is_not_allowed_gets_no_chat(chat_server, context, artifacts):
    server, _ = chat_server
    warnings: list[str] = []
    frame_html = f'<iframe id="direct" src="{server.url}/widget/" width="400" height="300"></iframe>'
    other = Site(free_port(), shop_page(server.url, frame_html))
    try:
        page = context.new_page()
        page.on("console", lambda m: warnings.append(m.text))
        page.goto(other.url + "/")
        page.wait_for_timeout(2500)
        assert page.locator("#support-widget").count() == 0  # the script adds no bubble there
        assert any("allowed_origins" in w and other.url in w for w in warnings), warnings
        framed = next(f for f in page.frames if f != page.main_frame)
        # frame-ancestors: Chromium refuses to show the chat in that site's frame
        assert framed.url.startswith("chrome-error://") or framed.locator("#customer-input").count() == 0
        page.screenshot(path=artifacts / "widget-refused.png")
    finally:
        other.close()

"""Fixtures for the web app's tests.

- `ui_app`: `create_app` over the `engine` fixture (scripted LM, hash embedder, real store), for FastAPI's TestClient.
- `live`: one real uvicorn server per test module on a free loopback port, over its own engine (the scripted LM
  streams with a small delay per piece, so streaming is visible), with an agent `ann` and an admin `ada`.
  `live.url`, `live.engine`, `live.backend`, `live.login(name)` (a session cookie), `live.reset()`.
- `browser`: headless Debian Chromium through Playwright (module scope). Skipped with the reason when Chromium is
  absent, unless `CHATBOT_REQUIRE_BROWSER=1` (CI), which makes that a failure.
- `artifacts`: `test-artifacts/` at the repository root, for screenshots.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("CHATBOT_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
PASSWORDS = {"ann": "ann-password-1", "ada": "ada-password-1"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerThread:
    """A uvicorn server for `app` in a background thread on 127.0.0.1."""

    def __init__(self, app: Any, port: int | None = None):
        import uvicorn

        self.port = port or free_port()
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on", timeout_graceful_shutdown=1
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def ui_app(engine):
    from ui.app import create_app

    return create_app(engine.config, engine)


def make_engine(home: Path, delay: float = 0.0, **routing: Any) -> tuple[Any, Any]:
    """An engine like the `engine` fixture's, in `home`: demo FAQ, hash embedder, scripted LM, real store."""
    from chatbot.config import AppConfig, StoreConfig
    from chatbot.engine import Engine
    from chatbot.store import Store
    from knowledge_base.config import KBConfig
    from knowledge_base.embedder import HashEmbedder
    from knowledge_base.kb import KnowledgeBase, demo_faq_path
    from tests.fixtures_engine import ScriptedBackend

    config = AppConfig()
    config.kb = KBConfig(embedder="hash:256")
    for key, value in routing.items():
        setattr(config.routing, key, value)
    embedder = HashEmbedder(dim=256)
    kb = KnowledgeBase(home / "kb", config.kb, embedder)
    kb.build(demo_faq_path())
    backend = ScriptedBackend(delay=delay)
    store = Store(StoreConfig(), path=home / "chatbot.sqlite3")
    engine = Engine.from_config(config, kb=kb, embedder=embedder, backend=backend, store=store)
    return engine.warm_up(), backend


@dataclass
class Live:
    url: str
    engine: Any
    backend: Any
    app: Any

    def login(self, name: str) -> str:
        """A session cookie value for `name` (made directly in the store, as the login form would)."""
        return self.engine.store.create_session(name, 3600)

    def cookies(self, name: str) -> dict[str, str]:
        from ui.auth import COOKIE

        return {COOKIE: self.login(name)}

    def reset(self) -> None:
        """Back to the defaults between tests: routing auto, nothing queued."""
        self.engine.config.routing.mode = "auto"
        self.backend.replies.clear()


@contextlib.contextmanager
def chatbot_home_as(home: Path):
    """`$CHATBOT_HOME` set to `home` for the block: a module-scoped server builds its engine and app there (the
    per-test home fixture does not reach module scope)."""
    previous = os.environ.get("CHATBOT_HOME")
    os.environ["CHATBOT_HOME"] = str(home)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("CHATBOT_HOME", None)
        else:
            os.environ["CHATBOT_HOME"] = previous


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    from ui.app import create_app

    home = tmp_path_factory.mktemp("live-home")
    with chatbot_home_as(home):
        engine, backend = make_engine(home, delay=0.03)
        for name, role in (("ann", "agent"), ("ada", "admin")):
            engine.store.add_user(name, role, PASSWORDS[name])
        app = create_app(engine.config, engine)
    with ServerThread(app) as server:
        yield Live(server.url, engine, backend, app)
    engine.close()


@pytest.fixture(autouse=False)
def live_reset(live):
    live.reset()
    yield live
    live.reset()


def chromium_missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        return f"Debian's chromium is not installed ({CHROMIUM} missing): run `make browser`"
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "the playwright package is not installed: pip install -e '.[test]'"
    return None


@pytest.fixture(scope="module")
def browser():
    reason = chromium_missing()
    if reason:
        if os.environ.get("CHATBOT_REQUIRE_BROWSER") == "1":
            pytest.fail(f"CHATBOT_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    executable = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def artifacts() -> Path:
    folder = REPO / "test-artifacts"
    folder.mkdir(exist_ok=True)
    return folder

"""Several app workers on one store: two real `chatbot serve` processes on their own ports, one data folder (the
knowledge base) and one store (SQLite in WAL mode, then PostgreSQL from `tests/fixtures_postgres.py`), generating
through one fake OpenAI-compatible model server in this process (the scripted LM's replies, streamed word by word),
the hash embedder, `[routing] mode = "draft_only"` so every answer waits for review.

A customer's message sent to worker 1 is reviewed and approved on worker 2, and the customer's page on worker 1
shows the reply; an FAQ rebuilt through one worker (or the CLI) is answered by the other within 5 s, with no failed
request meanwhile.
"""

from __future__ import annotations

import contextlib
import html
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from chatbot.config import GenerationConfig
from tests.fixtures_ui import REPO, ServerThread, free_port

TOKEN = "workers-admin-token"
NEW_ENTRY = {"id": "gift-cards", "question": "Do you sell gift cards?",
             "answer": "Yes, gift cards from $10 to $200 are sold in the shop."}  # fmt: skip


@dataclass
class Workers:
    urls: tuple[str, str]
    home: Path
    config: Path
    store: object
    processes: tuple[subprocess.Popen, subprocess.Popen]

    def cookie(self, name: str) -> dict[str, str]:
        from ui.auth import COOKIE

        return {COOKIE: self.store.create_session(name, 3600)}


def start_worker(config: Path, port: int, env: dict[str, str], log: Path) -> subprocess.Popen:
    """`chatbot serve` on `port` in its own process, its output in `log`."""
    with open(log, "w") as out:  # the child keeps its own copy of the descriptor
        command = [sys.executable, "-m", "cli", "--config", str(config), "serve", "--port", str(port)]
        return subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)


def wait_healthy(url: str, process: subprocess.Popen, log: Path, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the worker at {url} exited ({process.returncode}):\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/api/health", timeout=2).json().get("status") == "ok":
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"the worker at {url} did not become healthy in {timeout} s:\n{log.read_text()[-3000:]}")


def fake_model_server() -> Any:
    """An OpenAI-compatible server over the scripted LM (`tests.fixtures_engine.ScriptedBackend`): `/v1/models` and
    streamed `/v1/chat/completions`, all the OpenAI backend uses."""
    from fastapi import FastAPI, Request
    from fastapi.responses import StreamingResponse

    from chatbot.generate import GenerationRequest
    from tests.fixtures_engine import ScriptedBackend

    model = ScriptedBackend(delay=0.005)
    model.warm_up()
    app = FastAPI()

    @app.get("/v1/models")
    def models() -> dict:
        return {"object": "list", "data": [{"id": "scripted", "object": "model", "created": 0, "owned_by": "test"}]}

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> StreamingResponse:
        body = await request.json()
        stream = model.stream(GenerationRequest(body["messages"], GenerationConfig()))

        def chunk(delta: dict, finish: str | None = None) -> str:
            choice = {"index": 0, "delta": delta, "finish_reason": finish}
            return "data: " + json.dumps({"id": "c", "object": "chat.completion.chunk", "created": 0,
                                          "model": "scripted", "choices": [choice]}) + "\n\n"  # fmt: skip

        def events() -> Iterator[str]:
            yield chunk({"role": "assistant", "content": ""})
            for piece in stream:
                yield chunk({"content": piece})
            yield chunk({}, "stop") + "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    return app


@contextlib.contextmanager
def database(request: pytest.FixtureRequest, kind: str) -> Iterator[str | None]:
    """`[store] url` for the workers: None (SQLite, WAL, in the data folder) or a fresh database on the session's
    PostgreSQL server (skipped, saying why, where PostgreSQL is not installed)."""
    if kind == "sqlite":
        yield None
        return
    import psycopg

    server = request.getfixturevalue("postgres_server")
    name = f"workers_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server.url(), autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name} TEMPLATE template0")
    try:
        yield server.url(name)
    finally:
        with psycopg.connect(server.url(), autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def workers(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workers]:
    with database(request, request.param) as url:
        yield from run_workers(tmp_path_factory, url)


def run_workers(tmp_path_factory: pytest.TempPathFactory, url: str | None) -> Iterator[Workers]:
    from chatbot.config import StoreConfig
    from chatbot.store import Store
    from knowledge_base.config import KBConfig
    from knowledge_base.embedder import HashEmbedder
    from knowledge_base.kb import KnowledgeBase, demo_faq_path

    home = tmp_path_factory.mktemp("workers-home")
    KnowledgeBase(home / "kb", KBConfig(embedder="hash:256"), HashEmbedder(dim=256)).build(demo_faq_path())
    store = Store(StoreConfig(url=url), path=None if url else home / "chatbot.sqlite3").warm_up()
    store.add_user("ann", "agent", "ann-password-1")
    with ServerThread(fake_model_server()) as model_server:
        config = home / "config.toml"
        config.write_text(
            '[kb]\nembedder = "hash:256"\n'
            f'[model]\nbackend = "openai"\nbase_url = "{model_server.url}/v1"\n'
            '[routing]\nmode = "draft_only"\n'
            f'[server]\nwatch_interval_s = 0.5\nadmin_token = "{TOKEN}"\n'
            + (f'[store]\nurl = "{url}"\n' if url else ""),
            encoding="utf-8",
        )
        env = {**os.environ, "CHATBOT_HOME": str(home), "GRADIO_TEMP_DIR": str(tmp_path_factory.mktemp("gradio"))}
        ports = (free_port(), free_port())
        logs = [home / f"worker-{i}.log" for i in (1, 2)]
        processes = tuple(start_worker(config, port, env, log) for port, log in zip(ports, logs, strict=True))
        urls = tuple(f"http://127.0.0.1:{port}" for port in ports)
        try:
            for address, process, log in zip(urls, processes, logs, strict=True):
                wait_healthy(address, process, log)
            yield Workers(urls, home, config, store, processes)  # type: ignore[arg-type]
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
            store.close()


def ask(url: str, text: str, conversation: tuple[str, str] | None = None) -> dict:
    body: dict = {"model": "support-bot", "messages": [{"role": "user", "content": text}]}
    if conversation:
        body |= {"conversation_id": conversation[0], "conversation_secret": conversation[1]}
    response = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()


def shown(message: dict) -> str:
    """A chat row's text (Gradio's client gives the content as a list of typed parts)."""
    content = message["content"]
    return content if isinstance(content, str) else "".join(p.get("text", "") for p in content)


def test_a_draft_made_on_one_worker_is_approved_on_the_other_and_reaches_the_customer(workers):
    from gradio_client import Client

    one, two = workers.urls
    customer = Client(f"{one}/", verbose=False)
    # the page's session state (shown message ids, the last one) stays in worker 1, as for a browser's page
    chat, token, _ = customer.predict("How do I get a refund?", "", api_name="/send")
    conversation_id = token.partition(":")[0]
    assert conversation_id and "team will confirm" in shown(chat[-1])  # the hold notice: the answer waits for review

    agent = httpx.Client(base_url=two, cookies=workers.cookie("ann"), timeout=30)
    waiting = agent.get("/agent/api/inbox", params={"state": "waiting"}).json()
    item = next(i for i in waiting["items"] if i["conversation_id"] == conversation_id)
    view = agent.get(f"/agent/api/conversations/{conversation_id}").json()
    draft = view["draft"]
    assert draft["id"] == item["draft_id"] and "refund" in draft["text"].lower()
    approved = agent.post(f"/agent/api/drafts/{draft['id']}/approve", json={"version": draft["version"]})
    assert approved.status_code == 200, approved.text
    again = agent.post(f"/agent/api/drafts/{draft['id']}/approve", json={"version": draft["version"]})
    assert again.status_code == 409  # reviewed already, on this worker or the other: nothing sent twice

    deadline = time.monotonic() + 5
    arrived = None
    while time.monotonic() < deadline:  # what the chat page's timer does on worker 1
        history = customer.predict(token, api_name="/poll")
        if isinstance(history, list) and history and shown(history[-1]) != shown(chat[-1]):
            arrived = shown(history[-1])
            break
        time.sleep(0.3)
    assert arrived is not None and draft["text"][:60] in html.unescape(arrived)  # the page escapes `>`


def sources(reply: dict) -> list[str]:
    return [s["faq_id"] for s in reply["chatbot"]["sources"]]


def test_an_faq_rebuilt_through_one_worker_is_answered_by_the_other_within_5_s(workers):
    from knowledge_base.kb import demo_faq_path
    from knowledge_base.loaders import load_faq

    one, two = workers.urls
    import_dir = workers.home / "import"
    import_dir.mkdir(exist_ok=True)
    rows = [e.to_dict() for e in load_faq(demo_faq_path())] + [NEW_ENTRY]
    (import_dir / "faq.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    before = ask(two, "How do I get a refund?")["chatbot"]["index_version"]

    failures: list[str] = []
    served = []
    stop = threading.Event()

    def customers(url: str) -> None:  # customers keep chatting on both workers throughout
        while not stop.is_set():
            try:
                served.append(ask(url, "How long does delivery take?")["chatbot"]["index_version"])
            except (AssertionError, httpx.HTTPError) as exc:
                failures.append(f"{url}: {exc}")

    threads = [threading.Thread(target=customers, args=(url,)) for url in (one, two)]
    for thread in threads:
        thread.start()
    try:
        reloaded = httpx.post(f"{one}/api/faq/reload", json={"path": "faq.jsonl"},
                              headers={"authorization": f"Bearer {TOKEN}"}, timeout=120)  # fmt: skip
        assert reloaded.status_code == 200, reloaded.text
        version = reloaded.json()["index_version"]
        built = time.monotonic()
        assert version != before
        while True:
            reply = ask(two, "Do you sell gift cards?")
            if reply["chatbot"]["index_version"] == version:
                break
            assert time.monotonic() - built < 5, "worker 2 still answers from the old version after 5 s"
            time.sleep(0.1)
        answered_after = time.monotonic() - built
        assert "gift-cards" in sources(reply)
        time.sleep(0.5)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    assert failures == [] and answered_after < 5
    assert set(served) <= {before, version} and served[-1] == version


def test_a_cli_rollback_is_followed_by_every_worker(workers):
    versions = json.loads(subprocess.run(
        [sys.executable, "-m", "cli", "--config", str(workers.config), "kb", "versions", "--json"],
        cwd=REPO, env={**os.environ, "CHATBOT_HOME": str(workers.home)}, capture_output=True, text=True, check=True,
    ).stdout)  # fmt: skip
    current = next(v["version"] for v in versions if v["current"])
    older = next(v["version"] for v in versions if not v["current"])
    subprocess.run([sys.executable, "-m", "cli", "--config", str(workers.config), "kb", "rollback", older],
                   cwd=REPO, env={**os.environ, "CHATBOT_HOME": str(workers.home)}, check=True,
                   capture_output=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 5
        seen = {}
        while time.monotonic() < deadline:
            seen = {url: httpx.get(f"{url}/api/health", timeout=5).json()["index_version"] for url in workers.urls}
            if set(seen.values()) == {older}:
                break
            time.sleep(0.2)
        assert set(seen.values()) == {older}, seen
    finally:
        subprocess.run([sys.executable, "-m", "cli", "--config", str(workers.config), "kb", "rollback", current],
                       cwd=REPO, env={**os.environ, "CHATBOT_HOME": str(workers.home)}, check=True,
                       capture_output=True)  # fmt: skip


def test_health_names_the_backend_and_the_worker(workers):
    health = [httpx.get(f"{url}/api/health", timeout=10).json() for url in workers.urls]
    assert [h["backend"] for h in health] == ["openai", "openai"] and all(h["model"] == "scripted" for h in health)
    assert {h["worker"] for h in health} == {p.pid for p in workers.processes}


def test_bench_serve_compares_one_worker_on_sqlite_with_two_on_postgresql(postgres_url, tmp_path, capsys):
    from cli.main import main

    with ServerThread(fake_model_server()) as model_server:
        config = tmp_path / "bench.toml"
        config.write_text(f'[kb]\nembedder = "hash:256"\n[model]\nbackend = "openai"\n'
                          f'base_url = "{model_server.url}/v1"\n', encoding="utf-8")  # fmt: skip
        out = tmp_path / "compare.json"
        code = main(["--config", str(config), "bench", "serve", "--compare", "--store-url", postgres_url,
                     "--clients", "4", "--messages", "2", "--json", "--out", str(out)])  # fmt: skip
    result = json.loads(capsys.readouterr().out)
    assert code == 0 and result == json.loads(out.read_text()) and result["errors"] == 0
    one, two = result["setups"]["1 worker, SQLite"], result["setups"]["2 workers, PostgreSQL"]
    assert (one["store"], one["workers"], two["store"], two["workers"]) == ("sqlite", 1, "postgresql", 2)
    for setup in (one, two):
        assert setup["backend"] == "openai" and setup["model"] == "scripted"
        assert setup["n_requests"] == 8 and setup["errors"] == 0 and 0 < setup["ttft_s_p50"] <= setup["ttft_s_p95"]
        assert setup["tokens_s_total"] > 0
    assert result["ratios"]["ttft_s_p95"] == pytest.approx(two["ttft_s_p95"] / one["ttft_s_p95"])


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--compare"], "--compare needs --store-url postgresql://"),
        (["--compare", "--store-url", "sqlite:///x.db"], "--compare needs --store-url postgresql://"),
        (["--compare", "--store-url", "postgresql://u@h/db", "--url", "http://x"], "starts its own servers"),
    ],
)
def test_bench_serve_compare_refuses_what_it_cannot_run(argv, needle, capsys):
    from cli.main import main

    assert main(["bench", "serve", *argv]) == 2
    assert needle in capsys.readouterr().err


def test_an_admin_upload_on_one_worker_merges_into_what_another_worker_built_a_moment_ago(
    engine, chatbot_home, kb_config, hash_embedder, tmp_path
):
    from knowledge_base.kb import KnowledgeBase, demo_faq_path
    from ui.admin import AdminPage

    demo = demo_faq_path().read_text(encoding="utf-8")
    page = AdminPage(engine)  # worker 1's admin page, before its watcher has looked again
    other = KnowledgeBase(chatbot_home / "kb", kb_config, hash_embedder)  # worker 2's knowledge base
    theirs, mine = tmp_path / "theirs.jsonl", tmp_path / "mine.jsonl"
    theirs.write_text(demo + json.dumps(NEW_ENTRY) + "\n", encoding="utf-8")
    loyalty = {"id": "loyalty", "question": "Do you have a loyalty program?", "answer": "No, we do not."}
    mine.write_text(demo + json.dumps(loyalty) + "\n", encoding="utf-8")
    served_before = engine.kb.current_version
    built_there = other.build(theirs).version
    _, _, checked = page.check_upload(str(mine), "merge")
    assert checked["version"] == built_there != served_before  # compared with what is current, not what was
    assert page.build_faq(checked).startswith("✅")
    ids = {e.id for e in engine.kb.entries()}
    assert {"gift-cards", "loyalty"} <= ids  # worker 2's entry is kept, not lost under worker 1's merge


def test_serve_with_workers_refuses_at_once_what_would_stop_every_worker(chatbot_home, monkeypatch, capsys):
    from cli.serve import serve

    monkeypatch.setenv("GRADIO_TEMP_DIR", str(chatbot_home / "uploads"))  # uploads inside the data folder
    assert serve(None, "127.0.0.1", free_port(), workers=2) == 2
    assert "set $GRADIO_TEMP_DIR to a folder outside $CHATBOT_HOME" in capsys.readouterr().err
    assert not (chatbot_home / "kb").exists()  # refused before anything was built

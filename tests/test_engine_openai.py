"""The OpenAI-compatible backend, with the real `openai` client, against a real HTTP server started in the test
(`chatbot.openai_server` over the scheduler and a tiny random Llama, served by uvicorn on loopback)."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from chatbot.config import GenerationConfig, ModelConfig
from chatbot.generate import GenerationError, GenerationRequest
from chatbot.openai_backend import OpenAIBackend

GREEDY = GenerationConfig(max_new_tokens=12)
MESSAGES = [{"role": "system", "content": "You help customers."}, {"role": "user", "content": "Where is my order?"}]


@pytest.fixture(scope="module")
def server(tiny_loaded):
    import uvicorn

    from chatbot.openai_server import create_app
    from chatbot.scheduler import TransformersBackend

    backend = TransformersBackend(loaded=tiny_loaded)
    backend.warm_up()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    uv = uvicorn.Server(uvicorn.Config(create_app(backend, "tiny"), host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not uv.started and time.time() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/v1", backend
    uv.should_exit = True
    thread.join(timeout=10)
    backend.close()


def test_streams_the_same_text_as_the_local_backend(server):
    url, local = server
    remote = OpenAIBackend(ModelConfig(backend="openai", base_url=url))
    remote.warm_up()
    assert remote.model == "tiny"
    request = GenerationRequest(MESSAGES, GREEDY)
    pieces = list(remote.stream(request))
    assert len(pieces) > 1  # streamed, not one block
    assert "".join(pieces) == "".join(local.stream(request))
    remote.close()


def test_plain_completion_through_the_openai_client(server):
    import openai

    url, local = server
    client = openai.OpenAI(base_url=url, api_key="none")
    out = client.chat.completions.create(model="tiny", messages=MESSAGES, max_tokens=12, temperature=0)
    assert out.choices[0].message.content == "".join(local.stream(GenerationRequest(MESSAGES, GREEDY)))
    assert out.usage.completion_tokens > 0


def test_engine_runs_on_the_openai_backend(server, app_config, demo_kb):
    from chatbot.engine import Engine

    url, _ = server
    app_config.model = ModelConfig(backend="openai", base_url=url)
    engine = Engine.from_config(app_config, kb=demo_kb).warm_up()
    reply = engine.reply(engine.start_conversation(), "How do I get a refund?")
    assert reply.route == "answer" and reply.grounded
    assert engine.health()["backend"] == "openai"
    engine.close()


def test_unreachable_server_says_how_to_fix():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    backend = OpenAIBackend(ModelConfig(backend="openai", base_url=f"http://127.0.0.1:{port}/v1"))
    with pytest.raises(GenerationError, match="base_url"):
        backend.warm_up()


def test_openai_backend_needs_a_url():
    with pytest.raises(ValueError, match="base_url"):
        ModelConfig(backend="openai")

"""The OpenAI-compatible backend, with the real `openai` client, against llama.cpp's own OpenAI-compatible server
(`python -m llama_cpp.server` from `llama-cpp-python[server]`, started by the test on a free loopback port with the
embedded GGUF): streaming, the engine on top, cancellation, a server that is down, and no dialogue model loaded in
this process.

Like the llama.cpp backend's tests they skip without llama-cpp-python (`make llamacpp`), unless
CHATBOT_REQUIRE_LLAMACPP=1 (CI sets it, so there they run).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from chatbot.config import GenerationConfig, ModelConfig
from chatbot.generate import GenerationError, GenerationRequest
from chatbot.openai_backend import OpenAIBackend


def llama_server_missing() -> str | None:
    try:
        import llama_cpp.server.app  # noqa: F401
    except ImportError:
        return "llama-cpp-python[server] is not installed (make llamacpp)"
    return None


needs_llama_server = pytest.mark.skipif(
    llama_server_missing() is not None and os.environ.get("CHATBOT_REQUIRE_LLAMACPP") != "1",
    reason=llama_server_missing() or "",
)

GREEDY = GenerationConfig(max_new_tokens=12)
LONG = GenerationConfig(max_new_tokens=400)
SHORT = GenerationConfig(max_new_tokens=48)
MESSAGES = [{"role": "system", "content": "You help customers."}, {"role": "user", "content": "Where is my order?"}]
STORY = [
    {"role": "user", "content": "Write a long story, at least a thousand words, about a small shop and its customers."}
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LlamaServer:
    """`python -m llama_cpp.server` in a child process, its output in a log file."""

    def __init__(self, log: Path):
        from chatbot.llamacpp.backend import model_gguf

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.log = log
        command = [sys.executable, "-m", "llama_cpp.server", "--model", str(model_gguf(ModelConfig())),
                   "--model_alias", "smollm2", "--host", "127.0.0.1", "--port", str(self.port),
                   "--n_threads", "1", "--n_ctx", "2048"]  # fmt: skip
        with open(log, "wb") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        self._wait_ready()

    def _wait_ready(self, timeout_s: float = 120) -> None:
        import httpx

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited ({self.process.returncode}): {self.output()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/models", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"llama_cpp.server did not answer /v1/models in {timeout_s} s: {self.output()[-2000:]}")

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory):
    server = LlamaServer(tmp_path_factory.mktemp("llama-server") / "server.log")
    yield server
    server.stop()


@pytest.fixture
def remote(llama_server):
    backend = OpenAIBackend(ModelConfig(backend="openai", base_url=llama_server.url))
    backend.warm_up()
    yield backend
    backend.close()


@needs_llama_server
@pytest.mark.real_model
def test_streams_a_reply_from_llamacpps_server(remote, llama_server):
    import openai

    assert remote.model == "smollm2"  # picked from the server's /v1/models
    stream = remote.stream(GenerationRequest(MESSAGES, GREEDY))
    pieces = list(stream)
    assert len(pieces) > 1  # streamed, not one block
    assert stream.ttft_s is not None and stream.n_tokens == len(pieces)
    # The same request, whole, through the plain client: greedy decoding gives the same text.
    client = openai.OpenAI(base_url=llama_server.url, api_key="none")
    penalty = {"repetition_penalty": GREEDY.repetition_penalty}
    whole = client.chat.completions.create(
        model="smollm2", messages=MESSAGES, max_tokens=12, temperature=0, seed=0, extra_body=penalty
    )
    assert "".join(pieces) == whole.choices[0].message.content


@needs_llama_server
@pytest.mark.real_model
def test_cancelling_mid_stream_stops_the_server(remote, llama_server):
    cancel = threading.Event()
    stream = remote.stream(GenerationRequest(STORY, LONG), cancel)
    shown = []
    for piece in stream:
        shown.append(piece)
        if len(shown) == 3:
            cancel.set()
            cancelled_at = time.perf_counter()
    released_s = time.perf_counter() - cancelled_at
    assert len(shown) == 3 and stream.finish_reason == "cancelled"
    assert released_s < 2.0  # our client stopped reading at the next chunk and closed the response
    deadline = time.monotonic() + 10
    while "Disconnected from client" not in llama_server.output() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "Disconnected from client" in llama_server.output()  # the server stopped generating, too
    # ... so it is free at once for the next customer.
    assert "".join(remote.stream(GenerationRequest(MESSAGES, GREEDY)))


@needs_llama_server
@pytest.mark.real_model
def test_engine_replies_through_the_server_and_loads_no_dialogue_model(llama_server, app_config, demo_kb, monkeypatch):
    import llama_cpp
    import transformers

    import chatbot.model
    from chatbot.engine import Engine

    def refuse(*_args, **_kwargs):
        raise AssertionError("backend = 'openai' loaded a dialogue model in the app process")

    monkeypatch.setattr(chatbot.model, "load_model", refuse)
    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", refuse)
    monkeypatch.setattr(llama_cpp.Llama, "__init__", refuse)
    app_config.model = ModelConfig(backend="openai", base_url=llama_server.url)
    app_config.generation = SHORT
    engine = Engine.from_config(app_config, kb=demo_kb).warm_up()
    asked = llama_server.output().count("POST /v1/chat/completions")
    reply = engine.reply(engine.start_conversation(), "How do I get a refund?")
    assert llama_server.output().count("POST /v1/chat/completions") == asked + 1
    # The base model's words go through the claim check here as from any backend (sent, or the sources' words).
    assert reply.route == "answer" and reply.grounded and reply.text
    assert reply.fallback is False or reply.rejected
    health = engine.health()
    assert health["backend"] == "openai" and health["model"] == "smollm2"
    engine.close()


@needs_llama_server
@pytest.mark.real_model
def test_a_server_that_went_down_says_where_and_the_engine_answers_from_the_sources(
    tmp_path, app_config, demo_kb, caplog
):
    from chatbot.engine import Engine

    server = LlamaServer(tmp_path / "server.log")
    app_config.model = ModelConfig(backend="openai", base_url=server.url)
    app_config.generation = SHORT
    engine = Engine.from_config(app_config, kb=demo_kb).warm_up()
    server.stop()
    with pytest.raises(GenerationError, match=rf"server at {server.url}.* failed.*check that it is running"):
        list(engine.backend.stream(GenerationRequest(MESSAGES, GREEDY)))
    with caplog.at_level("WARNING"):
        reply = engine.reply(engine.start_conversation(), "How do I get a refund?")
    assert reply.grounded and reply.text  # the sources' own words, not an error page
    assert "generation failed" in caplog.text
    engine.close()


def test_unreachable_server_says_how_to_fix():
    backend = OpenAIBackend(ModelConfig(backend="openai", base_url=f"http://127.0.0.1:{free_port()}/v1"))
    with pytest.raises(GenerationError, match="base_url"):
        backend.warm_up()


def test_streaming_before_warm_up_says_so():
    backend = OpenAIBackend(ModelConfig(backend="openai", base_url="http://127.0.0.1:9/v1"))
    with pytest.raises(GenerationError, match="warm_up"):
        backend.stream(GenerationRequest(MESSAGES, GREEDY))


def test_openai_backend_needs_a_url():
    with pytest.raises(ValueError, match="base_url"):
        ModelConfig(backend="openai")

"""The backend factory: `[model] backend = "auto"` picks llama.cpp on a CPU when it is installed and transformers
otherwise, says why (log and `/api/health`), and explicit choices stay as configured."""

from __future__ import annotations

import logging

import pytest

from chatbot.backends import choose_backend, make_backend
from chatbot.config import AppConfig, ModelConfig


def test_auto_takes_llama_cpp_on_a_cpu_when_it_is_installed():
    choice = choose_backend(ModelConfig(), device="cpu", llama_cpp=True)
    assert choice.name == "llamacpp" and "installed" in choice.reason


def test_auto_falls_back_to_transformers_and_says_how_to_get_llama_cpp():
    choice = choose_backend(ModelConfig(), device="cpu", llama_cpp=False)
    assert choice.name == "transformers" and "make llamacpp" in choice.reason


def test_auto_serves_transformers_on_a_gpu():
    choice = choose_backend(ModelConfig(), device="cuda", llama_cpp=True)
    assert choice.name == "transformers" and "cuda" in choice.reason


def test_auto_serves_transformers_for_a_model_that_is_no_gguf(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    choice = choose_backend(ModelConfig(name=str(tmp_path)), device="cpu", llama_cpp=True)
    assert choice.name == "transformers" and ".gguf" in choice.reason


@pytest.mark.parametrize("name", ["transformers", "llamacpp"])
def test_an_explicit_backend_is_kept_whatever_is_installed(name):
    assert choose_backend(ModelConfig(backend=name), device="cuda", llama_cpp=False).name == name


def test_auto_is_the_default_and_a_bad_name_is_refused(tmp_path):
    from chatbot.settings import ConfigError

    assert AppConfig().model.backend == "auto"
    path = tmp_path / "bad.toml"
    path.write_text('[model]\nbackend = "fastest"\n')
    with pytest.raises(ConfigError):
        AppConfig.load(path)


def test_health_on_the_api_names_the_backend_and_why(app_config, demo_kb, tiny_loaded, caplog):
    from fastapi.testclient import TestClient

    from chatbot.engine import Engine
    from ui.app import create_app

    with caplog.at_level(logging.INFO, logger="chatbot.backends"):
        backend = make_backend(app_config, "transformers", max_batch=2, loaded=tiny_loaded)
    assert [r.getMessage() for r in caplog.records] == [
        'generation backend: transformers (configured: [model] backend = "transformers")'
    ]
    engine = Engine.from_config(app_config, kb=demo_kb, backend=backend).warm_up()
    try:
        with TestClient(create_app(app_config, engine)) as client:
            health = client.get("/api/health").json()
    finally:
        engine.close()
    assert health["backend"] == "transformers"
    assert health["backend_reason"] == 'configured: [model] backend = "transformers"'

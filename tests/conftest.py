"""Shared test setup. Each area keeps its fixtures in its own plugin module listed below."""

from __future__ import annotations

import os

import pytest

# Nothing may reach a model hub from a test.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

pytest_plugins = [
    "tests.fixtures_kb",
    "tests.fixtures_engine",
    "tests.fixtures_training",
    "tests.fixtures_ui",
    "tests.fixtures_postgres",
]


@pytest.fixture(autouse=True)
def chatbot_home(tmp_path, monkeypatch):
    """Every test gets its own empty data folder."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("CHATBOT_HOME", str(home))
    return home


@pytest.fixture(scope="session", autouse=True)
def cheap_password_hashes():
    """Password hashes at a tiny scrypt cost (OWASP's takes 0.3 s and 128 MiB each); yields the real default, which
    `test_passwords` checks."""
    from chatbot import passwords

    saved = passwords.COST
    passwords.COST = passwords.ScryptCost(n=2**4)
    yield saved
    passwords.COST = saved


# What `pytest -m "not slow"` leaves out, so the edit-test loop stays under a minute; `make test` and CI run all.
# Slow: the real models, Chromium, llama.cpp, PostgreSQL, live web servers, worker processes and tiny-model training.
SLOW_FIXTURES = frozenset({"live", "live_reset", "ui_app", "browser", "postgres_server", "postgres_url", "tiny_lm",
                           "tiny_loaded", "make_tiny_lm", "smol_tokenizer", "real_records", "demo_kb"})  # fmt: skip
SLOW_FILES = frozenset({"test_llamacpp_backend.py", "test_llamacpp_export.py", "test_engine_openai.py",
                        "test_ui_workers.py", "test_make.py", "test_gpu_check.py"})  # fmt: skip


def pytest_collection_modifyitems(items):
    for item in items:
        if (
            item.get_closest_marker("real_model")
            or item.get_closest_marker("browser")
            or item.path.name in SLOW_FILES
            or SLOW_FIXTURES & set(item.fixturenames)
            or "postgresql" in item.name
        ):
            item.add_marker(pytest.mark.slow)

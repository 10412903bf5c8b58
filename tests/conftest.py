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

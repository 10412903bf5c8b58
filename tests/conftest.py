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
]


@pytest.fixture(autouse=True)
def chatbot_home(tmp_path, monkeypatch):
    """Every test gets its own empty data folder."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("CHATBOT_HOME", str(home))
    return home

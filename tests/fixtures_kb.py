"""Fixtures for the kb tests, reused by the engine's and UI's tests.

- `hash_embedder`: the fast deterministic fake embedder (no model).
- `kb_config`: a KBConfig using it.
- `demo_kb`: a KnowledgeBase over the shipped demo FAQ, built with the hash embedder in the test's CHATBOT_HOME.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture
def hash_embedder():
    from knowledge_base.embedder import HashEmbedder

    return HashEmbedder(dim=256)


@pytest.fixture
def kb_config():
    from knowledge_base.config import KBConfig

    return KBConfig(embedder="hash:256")


@pytest.fixture
def demo_kb(chatbot_home, kb_config, hash_embedder):
    from knowledge_base.kb import KnowledgeBase, demo_faq_path

    assert Path(os.environ["CHATBOT_HOME"]) == chatbot_home
    kb = KnowledgeBase(chatbot_home / "kb", kb_config, hash_embedder)
    kb.build(demo_faq_path())
    return kb

"""Following changes made by other processes: the knowledge-base watcher (`chatbot.kb_watch`) over two
`KnowledgeBase` objects on one folder (as two workers have), and the polling thread under it (`chatbot.watch`)."""

from __future__ import annotations

import json
import logging
import threading
import time

import pytest

from chatbot.kb_watch import KnowledgeBaseWatcher
from chatbot.watch import Poller

FAQ = [
    {"id": "refund", "question": "How do I get a refund?", "answer": "Return the item within 30 days."},
    {"id": "delivery", "question": "How long does delivery take?", "answer": "3-5 business days."},
]


def write_faq(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def two_workers(chatbot_home, kb_config, hash_embedder, tmp_path):
    """Two knowledge bases on one folder: `other` changes it, `served` is the one a watcher follows."""
    from knowledge_base.kb import KnowledgeBase

    other = KnowledgeBase(chatbot_home / "kb", kb_config, hash_embedder)
    other.build(write_faq(tmp_path / "v1.jsonl", FAQ))
    served = KnowledgeBase(chatbot_home / "kb", kb_config, hash_embedder).warm_up()
    return other, served


def test_follows_a_build_and_a_rollback_made_elsewhere(two_workers, tmp_path):
    other, served = two_workers
    watcher = KnowledgeBaseWatcher(served)
    assert served.current_version == "v0001" and watcher.check() is None  # nothing changed
    new = [*FAQ, {"id": "gift", "question": "Do you sell gift cards?", "answer": "Yes, from $10."}]
    other.build(write_faq(tmp_path / "v2.jsonl", new))
    assert watcher.check() == "v0002"
    assert served.current_version == "v0002" and served.entry("gift") is not None
    other.rollback("v0001")
    assert watcher.check() == "v0001" and served.entry("gift") is None
    assert watcher.check() is None


def test_a_version_that_fails_to_load_keeps_the_old_one_and_says_why(two_workers, tmp_path, caplog):
    other, served = two_workers
    other.build(write_faq(tmp_path / "v2.jsonl", FAQ[:1]))
    (other.versions_dir / "v0002" / "index.faiss").write_bytes(b"not an index")  # e.g. a disk error
    watcher = KnowledgeBaseWatcher(served)
    with caplog.at_level(logging.ERROR, logger="chatbot.kb_watch"):
        assert watcher.check() is None
    assert served.current_version == "v0001" and served.entry("delivery") is not None  # still answering
    assert "v0002" in caplog.text and "v0001 still answers" in caplog.text and watcher.last_error
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="chatbot.kb_watch"):
        assert watcher.check() is None  # not loaded again (nor logged) until CURRENT changes
    assert caplog.text == ""
    other.build(write_faq(tmp_path / "v3.jsonl", FAQ))
    assert watcher.check() == "v0003" and watcher.last_error is None


def test_a_search_during_the_swap_comes_from_one_whole_version(two_workers, tmp_path):
    other, served = two_workers
    watcher = KnowledgeBaseWatcher(served)
    renamed = [{**FAQ[0], "id": "refund-new"}, {**FAQ[1], "id": "delivery-new"}]
    other.build(write_faq(tmp_path / "v2.jsonl", renamed))
    seen: list[tuple[str, frozenset[str]]] = []
    stop = threading.Event()

    def search() -> None:
        while not stop.is_set():
            result = served.search("refund", k=2)
            seen.append((result.index_version, frozenset(h.entry.id for h in result.hits)))

    thread = threading.Thread(target=search)
    thread.start()
    try:
        time.sleep(0.05)
        assert watcher.check() == "v0002"
        time.sleep(0.05)
    finally:
        stop.set()
        thread.join()
    expected = {"v0001": {"refund", "delivery"}, "v0002": {"refund-new", "delivery-new"}}
    assert {v for v, _ in seen} == {"v0001", "v0002"}
    assert all(ids == expected[version] for version, ids in seen)


def test_the_started_watcher_picks_up_a_change_within_its_interval(two_workers, tmp_path):
    other, served = two_workers
    watcher = KnowledgeBaseWatcher(served, interval=0.05).start()
    try:
        other.build(write_faq(tmp_path / "v2.jsonl", FAQ[:1]))
        deadline = time.monotonic() + 5
        while served.current_version != "v0002" and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        watcher.stop()
    assert served.current_version == "v0002"


def test_the_poller_survives_a_failing_check_and_stops(caplog):
    calls: list[int] = []

    def check() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise OSError("disk went away")

    poller = Poller(check, 0.01, "test-poller")
    with caplog.at_level(logging.ERROR, logger="chatbot.watch"):
        poller.start()
        deadline = time.monotonic() + 5
        while len(calls) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        poller.stop()
    assert len(calls) >= 3 and "disk went away" in caplog.text
    stopped_at = len(calls)
    time.sleep(0.05)
    assert len(calls) == stopped_at


@pytest.mark.parametrize("interval", [0, -1.0])
def test_a_watch_interval_must_be_positive(interval):
    with pytest.raises(ValueError, match="watch_interval_s"):
        Poller(lambda: None, interval, "bad")


def test_the_config_refuses_bad_worker_settings(tmp_path):
    from chatbot.config import AppConfig
    from chatbot.settings import ConfigError

    for key, value in (("workers", 0), ("watch_interval_s", 0)):
        path = tmp_path / "config.toml"
        path.write_text(f"[server]\n{key} = {value}\n", encoding="utf-8")
        with pytest.raises(ConfigError, match=f"server.{key}"):
            AppConfig.load(path)

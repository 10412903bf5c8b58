"""Versioned snapshots: build, reload, rollback, pruning, failed and killed builds, concurrent searches."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from knowledge_base.config import KBConfig
from knowledge_base.kb import KnowledgeBase, KnowledgeBaseError, NoSnapshotError, demo_faq_path
from knowledge_base.loaders import FaqValidationError, load_faq


def write_faq(path: Path, tag: str, n: int = 6, extra: list[dict] | None = None) -> Path:
    """An FAQ whose every answer names `tag`, so a hit tells which version it came from."""
    topics = ["refund", "delivery", "password", "invoice", "cancel", "address", "payment", "account"]
    rows = [
        {
            "id": t,
            "question": f"How does {t} work?",
            "answer": f"{t} answer {tag}",
            "alt_questions": [f"question about {t}", f"help with my {t}"],
        }
        for t in topics[:n]
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows + (extra or [])) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def kb(chatbot_home, kb_config, hash_embedder):
    return KnowledgeBase(chatbot_home / "kb", kb_config, hash_embedder)


def test_empty_kb_says_how_to_build(kb):
    kb.warm_up()
    assert kb.current_version is None and kb.versions() == []
    with pytest.raises(NoSnapshotError, match="chatbot kb build"):
        kb.search("refund")


def test_demo_kb_fixture_answers(demo_kb):
    result = demo_kb.search("I want my money back, how do I get a refund", k=3)
    assert result.hits[0].entry.id in {"get_refund", "check_refund_policy"}
    assert result.index_version == demo_kb.current_version == "v0001"
    assert demo_kb.entry("get_refund").category == "REFUND"
    assert len(demo_kb.entries()) == len(load_faq(demo_faq_path()))
    spanish = demo_kb.search("quiero un reembolso de mi pedido", language="es")
    assert spanish.hits[0].entry.language == "es"


def test_build_writes_a_complete_snapshot(kb, tmp_path):
    info = kb.build(write_faq(tmp_path / "a.jsonl", "A"))
    folder = kb.versions_dir / info.version
    assert {p.name for p in folder.iterdir()} >= {
        "manifest.json",
        "entries.jsonl",
        "vectors.npy",
        "index.faiss",
        "lexical.npz",
        "lexical_entries.npz",
    }
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["embedder"] == "hash:256" and manifest["dim"] == 256 and manifest["entries"] == 6
    assert (kb.root / "CURRENT").read_text().strip() == info.version and info.current
    assert all(e.language == "en" for e in kb.entries())  # detected (or defaulted) at build time


def test_rebuild_reembeds_only_changed_entries(kb, tmp_path):
    kb.build(write_faq(tmp_path / "a.jsonl", "A"))
    path = write_faq(
        tmp_path / "b.jsonl", "B", extra=[{"id": "new", "question": "A brand new question", "answer": "x"}]
    )
    info = kb.build(path)
    manifest = json.loads((kb.versions_dir / info.version / "manifest.json").read_text())
    assert manifest["embedded_now"] == 1  # only the new entry's one phrasing; answers are not embedded


def test_bad_file_changes_nothing(kb, tmp_path):
    kb.build(write_faq(tmp_path / "a.jsonl", "A"))
    before = sorted(p.name for p in kb.versions_dir.iterdir())
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x", "question": "q"}\n', encoding="utf-8")
    with pytest.raises(FaqValidationError):
        kb.build(bad)
    assert sorted(p.name for p in kb.versions_dir.iterdir()) == before
    assert kb.current_version == "v0001" and "A" in kb.search("refund").hits[0].entry.answer


def test_build_that_raises_midway_leaves_the_current_version(kb, tmp_path, monkeypatch):
    kb.build(write_faq(tmp_path / "a.jsonl", "A"))
    import faiss

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(faiss, "write_index", boom)  # fails after the vectors are written
    with pytest.raises(RuntimeError, match="disk full"):
        kb.build(write_faq(tmp_path / "b.jsonl", "B"))
    assert kb.current_version == "v0001" and [v.version for v in kb.versions()] == ["v0001"]
    assert not list(kb.versions_dir.glob(".build-*"))
    assert "A" in kb.search("refund").hits[0].entry.answer
    fresh = KnowledgeBase(kb.root, kb.config, kb.embedder).warm_up()
    assert fresh.current_version == "v0001"


KILLED_BUILD = """
import os, sys
from pathlib import Path
import faiss
from knowledge_base.config import KBConfig
from knowledge_base.embedder import HashEmbedder
from knowledge_base.kb import KnowledgeBase
real = faiss.write_index
def die(index, path):
    real(index, path)
    os._exit(9)   # the process is killed after writing part of the snapshot
faiss.write_index = die
KnowledgeBase(Path(sys.argv[1]), KBConfig(embedder="hash:256"), HashEmbedder(256)).build(sys.argv[2])
"""


def test_killed_build_leaves_no_half_written_version_current(kb, tmp_path):
    kb.build(write_faq(tmp_path / "a.jsonl", "A"))
    proc = subprocess.run(
        [sys.executable, "-c", KILLED_BUILD, str(kb.root), str(write_faq(tmp_path / "b.jsonl", "B"))],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 9, proc.stderr
    assert list(kb.versions_dir.glob(".build-*"))  # the debris is there ...
    assert [v.version for v in kb.versions()] == ["v0001"]  # ... but never listed
    fresh = KnowledgeBase(kb.root, kb.config, kb.embedder)
    assert fresh.reload() == "v0001" and "A" in fresh.search("refund").hits[0].entry.answer
    assert fresh.build(write_faq(tmp_path / "c.jsonl", "C")).version == "v0002"
    assert not list(kb.versions_dir.glob(".build-*"))  # cleaned by the next build


def test_rollback_and_reload_across_processes(kb, tmp_path, kb_config, hash_embedder):
    kb.build(write_faq(tmp_path / "a.jsonl", "A"))
    other = KnowledgeBase(kb.root, kb_config, hash_embedder).warm_up()  # another process, say the web app
    kb.build(write_faq(tmp_path / "b.jsonl", "B"))
    assert other.current_version == "v0001"  # until it reloads
    assert other.reload() == "v0002" and "B" in other.search("refund").hits[0].entry.answer
    info = kb.rollback("v0001")
    assert info.version == "v0001" and info.current and kb.current_version == "v0001"
    assert "A" in kb.search("refund").hits[0].entry.answer
    assert [(v.version, v.current) for v in kb.versions()] == [("v0001", True), ("v0002", False)]
    assert other.reload() == "v0001"
    with pytest.raises(KnowledgeBaseError, match="no complete version 'v0099'"):
        kb.rollback("v0099")
    assert kb.build(write_faq(tmp_path / "c.jsonl", "C")).version == "v0003"


def test_versions_are_pruned_but_never_the_current(chatbot_home, hash_embedder, tmp_path):
    kb = KnowledgeBase(chatbot_home / "kb", KBConfig(embedder="hash:256", keep_versions=2), hash_embedder)
    for tag in "ABCD":
        kb.build(write_faq(tmp_path / f"{tag}.jsonl", tag))
    assert [v.version for v in kb.versions()] == ["v0003", "v0004"]
    kb.rollback("v0003")
    kb.build(write_faq(tmp_path / "E.jsonl", "E"))
    assert [v.version for v in kb.versions()] == ["v0004", "v0005"]


def test_diff_against_the_current_version(kb, tmp_path):
    assert kb.diff(write_faq(tmp_path / "a.jsonl", "A", n=3)).added == ("refund", "delivery", "password")
    kb.build(tmp_path / "a.jsonl")
    changed = write_faq(tmp_path / "b.jsonl", "B", n=2, extra=[{"id": "new", "question": "q", "answer": "a"}])
    diff = kb.diff(changed)
    assert (diff.added, diff.changed, diff.removed) == (("new",), ("refund", "delivery"), ("password",))
    assert kb.diff(tmp_path / "a.jsonl").empty


def test_embedder_mismatch_names_the_fix(kb, tmp_path, chatbot_home):
    from knowledge_base.embedder import HashEmbedder

    kb.build(write_faq(tmp_path / "a.jsonl", "A"))
    other = KnowledgeBase(kb.root, KBConfig(embedder="hash:64"), HashEmbedder(64))
    with pytest.raises(KnowledgeBaseError, match="rebuild with `chatbot kb build FILE`"):
        other.warm_up()


def test_concurrent_searches_during_reload_never_fail_or_mix(kb, tmp_path, kb_config, hash_embedder):
    kb.build(write_faq(tmp_path / "v1.jsonl", "V1"))
    errors: list[BaseException] = []
    seen: set[str] = set()
    stop = threading.Event()

    def searcher():
        while not stop.is_set():
            try:
                result = kb.search("help with my refund and delivery", k=5)
                versions = {h.index_version for h in result.hits}
                assert versions == {result.index_version}, versions
                tags = {h.entry.answer.rsplit(" ", 1)[1] for h in result.hits}
                assert len(tags) == 1, tags  # every answer from the same FAQ file
                seen.add(result.index_version)
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)
                return

    threads = [threading.Thread(target=searcher) for _ in range(4)]
    for t in threads:
        t.start()
    builder = KnowledgeBase(kb.root, kb_config, hash_embedder)  # another process building
    for i in range(2, 6):
        builder.build(write_faq(tmp_path / f"v{i}.jsonl", f"V{i}"))
        kb.reload()
        if i == 4:
            kb.rollback("v0001")
    stop.set()
    for t in threads:
        t.join()
    assert not errors, errors[0]
    assert len(seen) >= 2


def test_hnsw_factory_builds_saves_and_finds(chatbot_home, hash_embedder, tmp_path):
    kb = KnowledgeBase(chatbot_home / "kb", KBConfig(embedder="hash:256", index_factory="HNSW32"), hash_embedder)
    kb.build(write_faq(tmp_path / "a.jsonl", "A", n=8))
    reloaded = KnowledgeBase(kb.root, kb.config, hash_embedder).warm_up()
    assert type(reloaded._current().faiss_index).__name__ == "IndexHNSWFlat"
    for topic in ("refund", "password", "invoice"):
        assert reloaded.search(f"help with my {topic}").hits[0].entry.id == topic


def test_reload_without_any_version_says_how_to_build(kb):
    with pytest.raises(NoSnapshotError, match="chatbot kb build"):
        kb.reload()

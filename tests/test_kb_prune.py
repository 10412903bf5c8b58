"""Pruning never removes a version some process serves (issue 17 item 13: a CLI build pruned the version a running
server was serving, so rolling back to it failed)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from knowledge_base.config import KBConfig
from knowledge_base.kb import KnowledgeBase
from tests.test_kb_versions import write_faq

CLI_BUILD = textwrap.dedent("""
    import sys
    from knowledge_base.config import KBConfig
    from knowledge_base.kb import KnowledgeBase
    kb = KnowledgeBase(sys.argv[1], KBConfig(embedder="hash:256", keep_versions=2))
    for path in sys.argv[2:]:
        kb.build(path)
""")


def test_a_build_in_another_process_spares_the_version_a_server_serves(chatbot_home, hash_embedder, tmp_path):
    root = chatbot_home / "kb"
    server = KnowledgeBase(root, KBConfig(embedder="hash:256", keep_versions=2), hash_embedder)
    for tag in "AB":
        server.build(write_faq(tmp_path / f"{tag}.jsonl", tag))
    server.rollback("v0001")
    files = [str(write_faq(tmp_path / f"{tag}.jsonl", tag)) for tag in "CDE"]
    subprocess.run([sys.executable, "-c", CLI_BUILD, str(root), *files], check=True, timeout=120)

    names = [v.version for v in server.versions()]
    assert names == ["v0001", "v0005"]  # the served one counts among the two kept
    assert server.search("How does refund work?").hits[0].entry.answer == "refund answer A"
    assert server.rollback("v0001").version == "v0001"


def test_records_of_ended_processes_do_not_keep_versions(chatbot_home, hash_embedder, tmp_path):
    root = chatbot_home / "kb"
    kb = KnowledgeBase(root, KBConfig(embedder="hash:256", keep_versions=1), hash_embedder)
    kb.build(write_faq(tmp_path / "A.jsonl", "A"))
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = root / "in-use" / f"{dead.stdout.strip()}-0"
    stale.write_text("v0001\n", encoding="utf-8")
    kb.build(write_faq(tmp_path / "B.jsonl", "B"))
    assert [v.version for v in kb.versions()] == ["v0002"] and not stale.exists()

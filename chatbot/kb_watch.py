"""Follow the knowledge base's `CURRENT` pointer while serving: a version built, activated or rolled back by another
worker, the admin page of another worker, or the CLI (`chatbot kb build`, `kb rollback`) is served here within one
poll interval.

`KnowledgeBase.reload()` does the work: it reads the small pointer file and, only when it names another version,
loads that snapshot off to the side and swaps it in atomically (searches under way finish on the old one). A
version that fails to load (a missing file, another embedder) leaves the old one serving and the reason is logged;
it is tried again when `CURRENT` changes (a new build or a rollback), not at every poll.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from chatbot.watch import Poller

log = logging.getLogger(__name__)


class KnowledgeBaseWatcher:
    """Keeps `kb` (a warmed-up `knowledge_base.kb.KnowledgeBase`) on the version `CURRENT` names."""

    def __init__(self, kb: Any, interval: float = 2.0):
        self.kb = kb
        self.last_error: str | None = None
        """Why the version `CURRENT` names could not be loaded (None once one loads)."""
        self._failed_pointer: str | None = None
        self._poller = Poller(self.check, interval, "chatbot-kb-watch")

    def check(self) -> str | None:
        """Swap in the version `CURRENT` names when this process serves another; returns the new version when it
        switched, else None (also when loading failed: the old version keeps answering)."""
        before = self.kb.current_version
        pointer = self._pointer()
        if pointer is not None and pointer == self._failed_pointer:
            return None  # this version failed to load already; wait for CURRENT to change
        try:
            version = self.kb.reload()
        except Exception as exc:  # noqa: BLE001 - whatever went wrong, the loaded version keeps serving
            self.last_error = f"{type(exc).__name__}: {exc}"
            self._failed_pointer = pointer
            log.error("could not load the knowledge base's current version %s; %s still answers: %s",
                      (pointer or "?").strip(), before, self.last_error)  # fmt: skip
            return None
        self.last_error = self._failed_pointer = None
        if version == before:
            return None
        log.info("knowledge base: now serving %s (was %s), made current elsewhere", version, before)
        return version

    def _pointer(self) -> str | None:
        try:
            return (Path(self.kb.root) / "CURRENT").read_text(encoding="utf-8")
        except OSError:
            return None

    def start(self) -> KnowledgeBaseWatcher:
        self._poller.start()
        return self

    def stop(self) -> None:
        self._poller.stop()

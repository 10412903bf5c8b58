"""Follow changes made by other processes while serving: each worker of `chatbot serve` polls the knowledge base's
`CURRENT` pointer (`chatbot.kb_watch`) and the adapter registry (`chatbot.adapter_watch`) every few seconds, off
the request path, and swaps in what another worker, the admin page or the CLI activated."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


class Poller:
    """A daemon thread calling `check()` every `interval` seconds until `stop()`. An exception from `check` is
    logged and the thread keeps polling (the caller's `check` decides what a failure leaves serving)."""

    def __init__(self, check: Callable[[], Any], interval: float, name: str):
        if interval <= 0:
            raise ValueError("a watch interval must be > 0 seconds (server.watch_interval_s)")
        self._check = check
        self.interval = interval
        self.name = name
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Poller:
        def loop() -> None:
            while not self._stop.wait(self.interval):
                try:
                    self._check()
                except Exception:  # noqa: BLE001 - a watcher must outlive one bad look
                    log.exception("%s: the check failed; trying again in %.1f s", self.name, self.interval)

        self._thread = threading.Thread(target=loop, name=self.name, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


def start_watchers(engine: Any, interval: float) -> list[Any]:
    """Start following the knowledge base (always) and the adapter registry (when `[model] adapter` does not pin
    one) for a warmed-up `engine`; returns the watchers, to `stop()` at shutdown."""
    from chatbot.adapter_watch import ActiveAdapterWatcher
    from chatbot.kb_watch import KnowledgeBaseWatcher

    watchers: list[Any] = [KnowledgeBaseWatcher(engine.kb, interval).start()]
    if engine.config.model.adapter is None:
        watchers.append(ActiveAdapterWatcher(engine, interval).start())
    return watchers

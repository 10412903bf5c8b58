"""Follow the adapter registry while serving: `chatbot adapters activate` (another process) switches the running app.

The registry records the active adapter in `$CHATBOT_HOME/adapters/active` (see `chatbot.adapters`); a watcher
thread reads that small file every few seconds and, when it names another adapter, switches the engine between
decode steps. Only when the config does not pin an adapter (`[model] adapter` unset).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from chatbot.model import adapter_name, adapters_home, default_adapter

log = logging.getLogger(__name__)


class ActiveAdapterWatcher:
    """A daemon thread calling `check()` every `interval` seconds until `stop()`."""

    def __init__(self, engine: Any, interval: float = 3.0):
        self.engine = engine
        self.interval = interval
        self._seen = self._record()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @staticmethod
    def _record() -> str | None:
        try:
            return (adapters_home() / "active").read_text(encoding="utf-8")
        except OSError:
            return None

    def check(self) -> str | None:
        """Switch the engine when the recorded active adapter changed since the last look; returns the adapter
        now served when it switched, else None. A failed switch is logged and retried at the next change."""
        record = self._record()
        if record == self._seen:
            return None
        self._seen = record
        target = default_adapter()
        serving = self.engine.health().get("adapter")
        if serving in ((adapter_name(target), str(target)) if target else (None,)):
            return None  # switched already (the admin page switches the engine itself)
        try:
            active = self.engine.set_adapter(str(target) if target else "none")
        except Exception:  # noqa: BLE001 - the app keeps serving the adapter it has
            log.exception("could not switch to the newly activated adapter %s", target)
            return None
        log.info("switched to the newly activated adapter %s", active)
        return active or "none"

    def start(self) -> ActiveAdapterWatcher:
        def loop() -> None:
            while not self._stop.wait(self.interval):
                self.check()

        self._thread = threading.Thread(target=loop, name="chatbot-adapter-watch", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

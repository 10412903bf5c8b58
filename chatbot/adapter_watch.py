"""Follow the adapter registry while serving: an adapter activated elsewhere (`chatbot adapters activate`, the
admin page of another worker) switches this process too.

The registry records the active adapter in `$CHATBOT_HOME/adapters/active` (see `chatbot.adapters`); a watcher
thread reads that small file every few seconds and, when it names another adapter, switches the engine between
decode steps. Only when the config does not pin an adapter (`[model] adapter` unset). A failed switch keeps the
adapter being served, logs why, and is tried again at the next change of the record.
"""

from __future__ import annotations

import logging
from typing import Any

from chatbot.adapters import ACTIVE_FILE, active_adapter, registry_dir
from chatbot.model import adapter_name
from chatbot.watch import Poller

log = logging.getLogger(__name__)


class ActiveAdapterWatcher:
    """Keeps `engine` on the adapter the registry names; polls every `interval` seconds once started."""

    def __init__(self, engine: Any, interval: float = 3.0):
        self.engine = engine
        self.interval = interval
        self.last_error: str | None = None
        """Why the newest activation could not be served (None after a switch)."""
        self._seen = self._record()
        self._poller = Poller(self.check, interval, "chatbot-adapter-watch")

    @staticmethod
    def _record() -> str | None:
        try:
            return (registry_dir() / ACTIVE_FILE).read_text(encoding="utf-8")
        except OSError:
            return None

    def check(self) -> str | None:
        """Switch the engine when the recorded active adapter changed since the last look; returns the adapter
        now served when it switched, else None."""
        record = self._record()
        if record == self._seen:
            return None
        self._seen = record
        target = active_adapter()
        serving = self.engine.health().get("adapter")
        if serving in ((adapter_name(target), str(target)) if target else (None,)):
            return None  # switched already (the admin page switches the engine itself)
        try:
            active = self.engine.set_adapter(str(target) if target else "none")
        except Exception as exc:  # noqa: BLE001 - the app keeps serving the adapter it has
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.error("could not switch to the newly activated adapter %s; %s still serves: %s", target,
                      serving or "the base model", self.last_error)  # fmt: skip
            return None
        self.last_error = None
        log.info("switched to the newly activated adapter %s", active)
        return active or "none"

    def start(self) -> ActiveAdapterWatcher:
        self._poller.start()
        return self

    def stop(self) -> None:
        self._poller.stop()

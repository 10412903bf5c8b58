"""ASGI helpers: the app factory of one worker process (for `chatbot serve --workers N`, uvicorn and gunicorn), and
the replaying `receive` shared by the middlewares that read a request body before the app does."""

from __future__ import annotations

import logging
import os
from typing import Any

CONFIG_ENV = "CHATBOT_CONFIG"
"""The config file a worker process reads (`chatbot serve --config` sets it for its workers); unset:
`$CHATBOT_HOME/config.toml` when it exists, else the defaults."""


def worker_app() -> Any:
    """The whole web app for one worker process: its own engine (the model loaded, none with `backend = "openai"`),
    the shared store and knowledge base, and watchers that follow the knowledge-base version and the adapter other
    processes make current. An app factory for servers that start the workers themselves:
    `uvicorn ui.asgi:worker_app --factory --workers 4` or `gunicorn 'ui.asgi:worker_app()' -k
    uvicorn_worker.UvicornWorker -w 4`."""
    from chatbot.config import AppConfig
    from ui.app import create_app

    if not logging.getLogger().handlers:  # a spawned worker: the watchers' and engine's messages go to stderr
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(process)d %(name)s: %(message)s")
    config = AppConfig.load(os.environ.get(CONFIG_ENV) or None)
    return create_app(config, follow=True)


def replaying(body: bytes | bytearray, receive: Any) -> Any:
    """A `receive` that hands the app `body` (already read from the connection) once, then the connection's own
    messages (a disconnect, say)."""
    replayed = False

    async def replay() -> dict[str, Any]:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}
        return await receive()

    return replay

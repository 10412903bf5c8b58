"""Learning from agents: export what people approved, corrected or wrote as training conversations.

From the engine's store (`Store.reviewed_examples`): every approved draft (the bot's text, confirmed), every edited
draft (the agent's final text as the target) and every agent reply in a handed-off chat, each with the
conversation up to it as context (redacted once, as the store wrote it), in DESIGN.md's log format with a `source`
field (`approved`, `edited`, `handoff`). `chatbot train --from-store` trains on the same data, optionally mixed
with base logs.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from chatbot.config import AppConfig


def reviewed_conversations(app: AppConfig | None = None, store: Any = None) -> list[dict[str, Any]]:
    """The store's reviewed replies as log conversations (redacted once, when the store wrote them; training redacts
    what it loads from files)."""
    from chatbot.store import Store

    own = store is None
    store = store or Store((app or AppConfig.load()).store).warm_up()
    try:
        rows = store.reviewed_examples()
    finally:
        if own:
            store.close()
    return rows


def export_reviews(out: str | Path, app: AppConfig | None = None, store: Any = None) -> dict[str, int]:
    """Write the reviewed conversations to `out` (JSONL); returns counts by source and `total`."""
    from training.data import write_logs

    rows = reviewed_conversations(app, store)
    total = write_logs(rows, out)
    counts = Counter(row.get("source", "") for row in rows)
    return {"total": total, **{k: counts.get(k, 0) for k in ("approved", "edited", "handoff")}}

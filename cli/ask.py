"""`chatbot ask "text"`: one answer in the terminal, streamed, then its route, sources and timings.

Uses the configured model and knowledge base; by default the embedded model and the demo FAQ (built on first
use in `$CHATBOT_HOME/kb`).
"""

from __future__ import annotations

import json
import sys
from typing import Any


def register(subparsers) -> None:
    parser = subparsers.add_parser("ask", help="ask one question; the reply streams, then route, sources, timings")
    parser.add_argument("text", help="the customer's message")
    parser.add_argument("--json", action="store_true", help="print one JSON object (keys as DESIGN.md) instead")
    parser.add_argument("--adapter", help="LoRA adapter folder or name (`none` for the base model)")
    parser.add_argument("--mode", choices=("auto", "draft_only", "off"), help="routing mode for this question")
    parser.set_defaults(func=run)


def ask(text: str, *, config_path: str | None = None, adapter: str | None = None, mode: str | None = None,
        as_json: bool = False, out: Any = None) -> dict[str, Any]:  # fmt: skip
    """Answer `text` in a fresh conversation, streaming to `out` (default: the current stdout); returns the JSON
    object."""
    out = out or sys.stdout
    from chatbot.config import AppConfig
    from chatbot.engine import Engine, validate_text

    overrides: dict[str, Any] = {}
    if adapter is not None:
        overrides["model.adapter"] = adapter
    if mode is not None:
        overrides["routing.mode"] = mode
    config = AppConfig.load(config_path, overrides)
    validate_text(text, config.limits.max_message_chars, config.limits.max_message_bytes)  # before loading models
    engine = Engine.from_config(config).warm_up()
    try:
        cid = engine.start_conversation("cli")
        stream = engine.stream(cid, text)
        shown = []
        for piece in stream:
            shown.append(piece)
            if not as_json:
                out.write(piece)
                out.flush()
        reply = stream.reply
    finally:
        engine.close()
    result = {"reply": reply.draft_text if reply.route == "draft" and reply.draft_text else reply.text,
              **reply.to_json()}  # fmt: skip
    if as_json:
        out.write(json.dumps(result, ensure_ascii=False) + "\n")
        return result
    out.write("\n")
    if reply.fallback:
        out.write(f"\n[the generated text failed the grounding check; sent the FAQ answer instead]\n{reply.text}\n")
    if reply.route == "draft" and reply.draft_text:
        out.write(f"\n[draft held for an agent]\n{reply.draft_text}\n")
    out.write(f"\nroute: {reply.route} ({reply.reason})   language: {reply.language}   grounded: {reply.grounded}"
              f"   adapter: {reply.adapter or 'none'}   index: {reply.index_version}\n")  # fmt: skip
    for i, hit in enumerate(reply.sources, 1):
        out.write(f"  [{i}] {hit.score:.2f}  {hit.entry.id}: {hit.entry.question}\n")
    out.write("timings: " + ", ".join(f"{k} {v:.3f}s" for k, v in reply.timings.items() if k != "similarity") + "\n")
    return result


def run(args) -> int:
    from chatbot.engine import InputError
    from chatbot.model import ModelError

    try:
        ask(args.text, config_path=args.config, adapter=args.adapter, mode=args.mode, as_json=args.json)
    except (InputError, ModelError) as exc:
        print(f"chatbot ask: {exc}", file=sys.stderr)
        return 1
    return 0

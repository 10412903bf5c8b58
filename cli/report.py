"""`chatbot report`: the resolution figures (`chatbot/resolution.py`) and each FAQ entry's autonomy mode
(`chatbot/autonomy.py`) from the store in `$CHATBOT_HOME`, as a short table or one JSON object."""

from __future__ import annotations

import json
import sys
from typing import Any, TextIO

SHARES = ("contained", "confirmed", "durable", "handoffs", "acceptance")
"""Figures that are shares (shown as percentages); the others are word counts and seconds."""


def report(days: int = 30, *, config_path: str | None = None, now: float | None = None) -> dict[str, Any]:
    """`{"days", "since", "now", "figures": {name: {"definition", "n", "value", "per_day", "per_entry", ...}},
    "autonomy": [{"faq_id", "mode", "effective", "pinned", "evidence", "history"}]}` over the configured store
    (the entries listed are those the store knows: the top source of a reply or draft, or one with a history)."""
    from chatbot.autonomy import Autonomy
    from chatbot.config import AppConfig
    from chatbot.resolution import Resolution
    from chatbot.store import Store

    config = AppConfig.load(config_path)
    store = Store(config.store).warm_up()
    try:
        resolution = Resolution(store, config, days=days, now=now)
        autonomy = Autonomy(store, config)
        return {
            "days": days, "since": resolution.since, "now": resolution.now, "figures": resolution.figures(),
            "autonomy": autonomy.overview(autonomy.known_entries()),
        }  # fmt: skip
    finally:
        store.close()


def print_table(result: dict[str, Any], stream: TextIO) -> None:
    """Each figure's total and each entry's mode, one line each."""
    stream.write(f"last {result['days']} days\n")
    for name, figure in result["figures"].items():
        value = figure["value"]
        shown = "-" if value is None else f"{value:.1%}" if name in SHARES else f"{value:.1f}"
        stream.write(f"{name:18s} {shown:>8s}  (n={figure['n']})\n")
    for entry in result["autonomy"]:
        pin = " (pinned)" if entry["pinned"] else ""
        stream.write(f"{entry['faq_id']:30s} {entry['mode']}{pin}, drafts {entry['evidence']['drafts']}\n")


def run(args) -> int:
    if args.days < 1:
        print("chatbot report: --days must be >= 1", file=sys.stderr)
        return 2
    result = report(args.days, config_path=args.config)
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    else:
        print_table(result, sys.stdout)
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "report", help="resolution figures (contained, confirmed, durable, handoffs, acceptance ...) and autonomy modes"
    )
    p.add_argument("--days", type=int, default=30, help="the period, in days before now (default: 30)")
    p.add_argument("--json", action="store_true", help="print one JSON object (the figures with their definitions)")
    p.set_defaults(func=run)

"""The `chatbot` command. Thin: each subcommand module adds its parser and calls a typed function.

Subcommand modules import only argparse-level things at import time, so `--help` is instant; heavy
libraries (torch, faiss, gradio) are imported inside the functions that run a command. The CLI is the
application's entry point, so it may dispatch to `training` and `ui` (lazily), which import `chatbot`.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from chatbot.settings import ConfigError

# Each module defines `register(subparsers)`; the parsers set `func` to a callable taking the parsed args.
COMMAND_MODULES = (
    "cli.kb",
    "cli.ask",
    "cli.bench",
    "cli.train",
    "cli.serve",
    "cli.eval_answers",
    "cli.report",
    "cli.store",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chatbot", description="A self-hosted customer-service chatbot.")
    parser.add_argument("--config", help="TOML config file (default: $CHATBOT_HOME/config.toml when it exists)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print(f"chatbot: config error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("chatbot: interrupted", file=sys.stderr)
        return 130

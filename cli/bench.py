"""`chatbot bench ...`: the benchmark suite. Each benchmark module adds its own subcommand."""

from __future__ import annotations

import importlib

BENCH_MODULES = (
    "cli.bench_retrieval",
    "chatbot.generate_bench",
    "ui.serve_bench",
    "cli.bench_learn",
)


def register(subparsers) -> None:
    parser = subparsers.add_parser("bench", help="benchmarks; results as JSON and a short table")
    sub = parser.add_subparsers(dest="bench", required=True, metavar="BENCHMARK")
    for name in BENCH_MODULES:
        importlib.import_module(name).register(sub)

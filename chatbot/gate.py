"""The answer-quality gate in front of a new FAQ version or adapter.

The active and the candidate version (or adapter) answer the deployment's own `[eval]` files through the same
engine and backend (`chatbot.answer_eval`); the candidate is refused when it is worse, beyond `[eval]`'s
tolerances, on answered accuracy, first-turn accuracy, follow-up accuracy, unsupported claims or rejected
generations. With no `[eval]` files the gate says so and lets the change through.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chatbot.config import AppConfig, EvalConfig

log = logging.getLogger(__name__)

NOT_CONFIGURED = (
    "no [eval] files configured (set [eval] queries and/or conversations): the change is not checked against "
    "the active one"
)

# metric, direction (+1: higher is better), the EvalConfig tolerance that applies
GATED = (
    ("answered_accuracy", 1, "max_accuracy_drop"),
    ("first_turn_accuracy", 1, "max_accuracy_drop"),
    ("followup_accuracy", 1, "max_followup_drop"),
    ("unsupported_share", -1, "max_unsupported_rise"),
    ("fallback_share", -1, "max_fallback_rise"),
)
SHOWN = ("answered_share", "oos_answered", "composed_share", "latency_s_p50")
"""Shown in the table for the reader, not gated (latency and coverage depend on the machine and the FAQ)."""


class GateRefusedError(RuntimeError):
    """The candidate answers worse than the active one; `result` holds the comparison."""

    def __init__(self, what: str, result: GateResult):
        super().__init__(f"{what} not activated: {'; '.join(result.reasons)} (force it to activate it anyway)")
        self.result = result


@dataclass(frozen=True)
class GateRow:
    """One line of the comparison table."""

    metric: str
    active: float | None
    candidate: float | None
    change: float | None
    worse: bool = False
    """Gated, and worse than its tolerance allows."""


@dataclass(frozen=True)
class GateResult:
    """The gate's decision: `ok`, the `reasons` (refusals, or why nothing was compared) and the table."""

    ok: bool
    reasons: tuple[str, ...] = ()
    rows: tuple[GateRow, ...] = ()

    def markdown(self) -> str:
        """The comparison as a Markdown table (empty when nothing was compared)."""
        if not self.rows:
            return ""

        def cell(value: float | None, signed: bool = False) -> str:
            return "—" if value is None else (f"{value:+.3f}" if signed else f"{value:.3f}")

        lines = ["| metric | active | candidate | change |", "|---|---:|---:|---:|"]
        lines += [f"| {'❌ ' if r.worse else ''}{r.metric} | {cell(r.active)} | {cell(r.candidate)} "
                  f"| {cell(r.change, True)} |" for r in self.rows]  # fmt: skip
        return "\n".join(lines)

    def text(self) -> str:
        """The comparison as plain text for the terminal, then the reasons."""
        lines = [f"{'metric':22s} {'active':>9s} {'candidate':>9s} {'change':>8s}"]
        for r in self.rows:
            active = "-" if r.active is None else f"{r.active:.3f}"
            candidate = "-" if r.candidate is None else f"{r.candidate:.3f}"
            change = "-" if r.change is None else f"{r.change:+.3f}"
            lines.append(f"{r.metric:22s} {active:>9s} {candidate:>9s} {change:>8s}{'  WORSE' if r.worse else ''}")
        return "\n".join([*lines[: 1 if self.rows else 0], *lines[1:], *self.reasons])


def compare(active: dict[str, Any], candidate: dict[str, Any], config: EvalConfig) -> GateResult:
    """Compare two `AnswerReport.to_dict()` results; refuse where the candidate is worse beyond the tolerances.
    A metric either side lacks (e.g. no conversations) is shown and not gated."""
    rows, reasons = [], []
    for metric, direction, tolerance in GATED:
        a, c = active.get(metric), candidate.get(metric)
        change = None if a is None or c is None else round(c - a, 4)
        allowed = getattr(config, tolerance)
        worse = change is not None and direction * change < -allowed - 1e-9
        if worse:
            verb = "fell" if direction > 0 else "rose"
            reasons.append(f"{metric} {verb} from {a:.3f} to {c:.3f} (tolerance {allowed:g}, [eval] {tolerance})")
        rows.append(GateRow(metric, a, c, change, worse))
    for metric in SHOWN:
        a, c = active.get(metric), candidate.get(metric)
        rows.append(GateRow(metric, a, c, None if a is None or c is None else round(c - a, 4)))
    return GateResult(not reasons, tuple(reasons), tuple(rows))


def load_eval_files(config: EvalConfig) -> tuple[list, list]:
    """The `[eval]` queries and conversations (each cut to `limit`, spread over the file); `ConfigError` naming
    the key when a file cannot be used."""
    from chatbot.answer_eval import spread
    from chatbot.settings import ConfigError
    from knowledge_base.loaders import FaqValidationError, load_conversations, load_queries

    try:
        queries = load_queries(config.path(config.queries)) if config.queries else []
    except FaqValidationError as exc:
        raise ConfigError(f"[eval] queries: {exc}") from exc
    try:
        conversations = load_conversations(config.path(config.conversations)) if config.conversations else []
    except FaqValidationError as exc:
        raise ConfigError(f"[eval] conversations: {exc}") from exc
    return spread(queries, config.limit), spread(conversations, config.limit)


class _Lent:
    """A warm backend lent to an evaluation engine: its owner warms it up and closes it."""

    def __init__(self, backend: Any):
        self._backend = backend

    def warm_up(self) -> None:
        pass

    def close(self) -> None:
        pass

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)


def evaluate_kb(config: AppConfig, kb: Any, backend: Any, queries: list, conversations: list, *,
                progress: bool = False) -> dict[str, Any]:  # fmt: skip
    """The answer figures of `kb` with a warm `backend`, recorded in a throwaway store (the live one never sees the
    evaluation's conversations)."""
    from chatbot.answer_eval import evaluate_answers
    from chatbot.engine import Engine
    from chatbot.store import Store

    with tempfile.TemporaryDirectory(prefix="chatbot-gate-") as tmp:
        store = Store(config.store, path=Path(tmp) / "eval.sqlite3")
        engine = Engine.from_config(config, kb=kb, embedder=kb.embedder, backend=_Lent(backend), store=store)
        engine.warm_up()
        try:
            return evaluate_answers(engine, queries, conversations, progress=progress).to_dict()
        finally:
            engine.close()


def _skip(reason: str) -> GateResult:
    log.warning("answer gate: %s", reason)
    return GateResult(True, (reason,))


def check_faq_version(kb: Any, candidate: str, config: AppConfig, backend: Any = None, *,
                      progress: bool = False) -> GateResult:  # fmt: skip
    """Compare FAQ version `candidate` of `kb` (built, not necessarily current) with the current one on the
    `[eval]` files. `backend`: a warm generation backend to use (the server's); None loads the configured one."""
    if not config.eval.configured:
        return _skip(NOT_CONFIGURED)
    current = kb.current_version
    if current is None or current == candidate:
        return _skip(f"no other active FAQ version to compare {candidate} with: it goes through")
    queries, conversations = load_eval_files(config.eval)
    own = backend is None
    if own:
        from chatbot.backends import make_backend

        backend = make_backend(config)
        backend.warm_up()
    try:
        active = evaluate_kb(config, kb.at(current), backend, queries, conversations, progress=progress)
        new = evaluate_kb(config, kb.at(candidate), backend, queries, conversations, progress=progress)
    finally:
        if own:
            backend.close()
    result = compare(active, new, config.eval)
    log.info("answer gate, FAQ %s -> %s: %s", current, candidate, "ok" if result.ok else "; ".join(result.reasons))
    return result


def check_adapter(engine: Any, candidate: str | None, config: AppConfig | None = None, *,
                  progress: bool = False) -> GateResult:  # fmt: skip
    """Compare adapter `candidate` (a folder; None = the base model) with the one `engine` serves, on the `[eval]`
    files through the same engine: `set_adapter` between the runs, and back to the served one afterwards.

    `config` defaults to the engine's (or the config file's); with `engine` None and `[eval]` files set, an engine
    serving the configured (active) adapter is loaded for the comparison and closed after it.
    """
    config = config or (engine.config if engine is not None else AppConfig.load())
    if not config.eval.configured:
        return _skip(NOT_CONFIGURED)
    if engine is None:
        from chatbot.engine import Engine
        from chatbot.store import Store

        with tempfile.TemporaryDirectory(prefix="chatbot-gate-") as tmp:
            engine = Engine.from_config(config, store=Store(config.store, path=Path(tmp) / "gate.sqlite3"))
            try:
                return check_adapter(engine.warm_up(), candidate, config, progress=progress)
            finally:
                engine.close()
    queries, conversations = load_eval_files(config.eval)
    serving = engine.health().get("adapter")
    kb = engine.kb.at(engine.kb.current_version)  # both runs search the same version, even if a build lands
    active = evaluate_kb(config, kb, engine.backend, queries, conversations, progress=progress)
    try:
        engine.set_adapter(candidate or "none")
        new = evaluate_kb(config, kb, engine.backend, queries, conversations, progress=progress)
    finally:
        engine.set_adapter(serving or "none")
    result = compare(active, new, config.eval)
    log.info("answer gate, adapter %s -> %s: %s", serving, candidate, "ok" if result.ok else "; ".join(result.reasons))
    return result


def activate_version(kb: Any, version: str, config: AppConfig, *, force: bool = False, backend: Any = None,
                     progress: bool = False) -> tuple[Any, GateResult]:  # fmt: skip
    """Make FAQ `version` current through the gate (`force` skips it). Returns `(VersionInfo, GateResult)`;
    raises `GateRefusedError` when refused (the current version stays, `version` stays on disk)."""
    result = (
        GateResult(True, ("forced: the gate did not run",))
        if force
        else check_faq_version(kb, version, config, backend, progress=progress)
    )
    if not result.ok:
        raise GateRefusedError(f"FAQ version {version}", result)
    return kb.activate(version), result

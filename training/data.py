"""Support logs: loading (DESIGN.md's JSONL conversations and single-turn question/answer CSVs), validation with
line numbers, cleaning (redaction, empty and duplicate turns) and a seeded train/validation split by conversation.

A bad row (malformed JSON, an unknown role, a conversation with no assistant turn that answers a customer, an
empty CSV cell) is a `Problem` with its file and line. With `strict=True` loading stops with a `LogError` listing
it; otherwise it is skipped and counted in the `LoadReport`.
"""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chatbot.records import Turn
from knowledge_base.loaders import Problem

ROLE_ALIASES = {"user": "user", "customer": "user", "assistant": "assistant", "agent": "assistant", "system": "system"}
QUESTION_COLUMNS = ("question", "instruction", "query", "customer")
ANSWER_COLUMNS = ("answer", "response", "reply", "agent")


@dataclass(frozen=True)
class Conversation:
    """One logged conversation: `user` and `assistant` turns (and `system` turns, which training ignores)."""

    id: str
    turns: tuple[Turn, ...]
    language: str | None = None
    """The reply language for the system prompt; None = the training config's `language`."""
    source: str = ""
    """Where it came from (`taskmaster4`, `sgd`, `bitext`, `approved`, `edited`, `handoff`, a file name)."""

    def to_json(self) -> dict[str, Any]:
        """DESIGN.md's log format (one JSONL line)."""
        out: dict[str, Any] = {"id": self.id, "messages": [{"role": t.role, "content": t.content} for t in self.turns]}
        if self.language:
            out["language"] = self.language
        if self.source:
            out["source"] = self.source
        return out

    @property
    def n_replies(self) -> int:
        """Assistant turns that answer a customer (each becomes one training example)."""
        seen_user, n = False, 0
        for turn in self.turns:
            if turn.role == "user" and turn.content.strip():
                seen_user = True
            elif turn.role == "assistant" and turn.content.strip() and seen_user:
                n += 1
        return n


class LogError(ValueError):
    """A log file that cannot be used (missing, unknown format, or a bad row under `strict`); lists every
    problem with its line number."""

    def __init__(self, message: str, problems: Sequence[Problem] = ()):
        self.problems = list(problems)
        lines = [message, *(f"  {p}" for p in self.problems[:20])]
        if len(self.problems) > 20:
            lines.append(f"  ... and {len(self.problems) - 20} more")
        super().__init__("\n".join(lines))


@dataclass
class LoadReport:
    """What loading found: conversations kept, bad rows skipped (with line numbers) and cleaning counts."""

    path: str
    rows: int = 0
    conversations: int = 0
    problems: list[Problem] = field(default_factory=list)
    empty_turns: int = 0
    duplicate_turns: int = 0
    duplicate_conversations: int = 0

    @property
    def skipped(self) -> int:
        return len(self.problems)

    def summary(self) -> str:
        text = f"{self.path}: {self.conversations} conversations from {self.rows} rows"
        if self.problems:
            text += f", {self.skipped} bad rows skipped (first: {self.problems[0]})"
        extra = [
            (self.empty_turns, "empty turns"),
            (self.duplicate_turns, "duplicate turns"),
            (self.duplicate_conversations, "duplicate conversations"),
        ]
        dropped = ", ".join(f"{n} {what}" for n, what in extra if n)
        return text + (f"; dropped {dropped}" if dropped else "")

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "rows": self.rows,
            "conversations": self.conversations,
            "skipped": self.skipped,
            "problems": [str(p) for p in self.problems[:50]],
            "empty_turns": self.empty_turns,
            "duplicate_turns": self.duplicate_turns,
            "duplicate_conversations": self.duplicate_conversations,
        }


def parse_conversation(obj: Any, fallback_id: str) -> Conversation:
    """A conversation from one decoded JSONL object; raises `ValueError` saying what is wrong."""
    if not isinstance(obj, dict):
        raise ValueError(f"expected a JSON object with `messages`, got {type(obj).__name__}")
    messages = obj.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ValueError("`messages` must be a non-empty list of {role, content} objects")
    turns = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise ValueError(f"message {i} is not an object")
        role = message.get("role")
        if not isinstance(role, str) or role.strip().lower() not in ROLE_ALIASES:
            raise ValueError(f"message {i} has unknown role {role!r}; use user/assistant/system (or customer/agent)")
        content = message.get("content")
        if content is None:
            content = ""
        if not isinstance(content, str):
            raise ValueError(f"message {i} content must be a string, got {type(content).__name__}")
        turns.append(Turn(ROLE_ALIASES[role.strip().lower()], content))  # type: ignore[arg-type]
    conv_id = obj.get("id")
    language = obj.get("language")
    return Conversation(
        id=str(conv_id) if conv_id not in (None, "") else fallback_id,
        turns=tuple(turns),
        language=language if isinstance(language, str) and language else None,
        source=str(obj.get("source") or ""),
    )


def clean_conversation(conv: Conversation, redact: bool = True, report: LoadReport | None = None) -> Conversation:
    """Strip and (optionally) redact every turn, drop empty turns and a turn repeating the one before it, and merge
    consecutive turns of the same role (one speaker typing several messages) into one."""
    from chatbot.redact import redact as redact_text

    turns: list[Turn] = []
    for turn in conv.turns:
        text = "\n".join(line.rstrip() for line in turn.content.replace("\r\n", "\n").strip().split("\n"))
        if redact:
            text = redact_text(text)
        if not text:
            if report:
                report.empty_turns += 1
            continue
        if turns and turns[-1].role == turn.role:
            if turns[-1].content == text or turns[-1].content.endswith("\n" + text):
                if report:
                    report.duplicate_turns += 1
                continue
            turns[-1] = Turn(turn.role, f"{turns[-1].content}\n{text}")
            continue
        turns.append(Turn(turn.role, text))
    return Conversation(conv.id, tuple(turns), conv.language, conv.source)


def _fingerprint(conv: Conversation) -> tuple:
    return tuple((t.role, t.content) for t in conv.turns if t.role != "system")


def _check(conv: Conversation) -> None:
    if not any(t.role == "assistant" for t in conv.turns):
        raise ValueError("conversation has no assistant turn (nothing to learn from)")
    if conv.n_replies == 0:
        raise ValueError("no assistant turn follows a customer turn (nothing to learn from)")


def _jsonl_rows(path: Path) -> Iterable[tuple[int, Conversation | Exception]]:
    with path.open(encoding="utf-8", errors="strict") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield line_no, parse_conversation(json.loads(line), f"{path.stem}-{line_no}")
            except json.JSONDecodeError as exc:
                yield line_no, ValueError(f"malformed JSON: {exc.msg} (column {exc.colno})")
            except ValueError as exc:
                yield line_no, exc


def _csv_rows(path: Path) -> Iterable[tuple[int, Conversation | Exception]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        header = [h.strip().lower() for h in reader.fieldnames or []]
        q_col = next((c for c in QUESTION_COLUMNS if c in header), None)
        a_col = next((c for c in ANSWER_COLUMNS if c in header), None)
        if q_col is None or a_col is None:
            raise LogError(
                f"{path}: a Q/A CSV needs a question column ({'/'.join(QUESTION_COLUMNS)}) and an answer column "
                f"({'/'.join(ANSWER_COLUMNS)}); found {', '.join(header) or 'no header'}"
            )
        lookup = {h.strip().lower(): h for h in reader.fieldnames or []}
        line_no = 1
        for row in reader:
            start = line_no + 1
            line_no = reader.line_num
            if None in row:
                yield start, ValueError(f"row has {len(header) + len(row[None])} cells, the header {len(header)}")
                continue
            question = (row.get(lookup[q_col]) or "").strip()
            answer = (row.get(lookup[a_col]) or "").strip()
            if not question or not answer:
                yield start, ValueError(f"empty {q_col if not question else a_col}")
                continue
            row_id = (row.get(lookup["id"]) if "id" in lookup else "") or f"{path.stem}-{start}"
            language = (row.get(lookup["language"]) if "language" in lookup else "") or None
            yield start, Conversation(str(row_id), (Turn("user", question), Turn("assistant", answer)), language)


def load_logs(path: str | Path, strict: bool = False, redact: bool = True) -> tuple[list[Conversation], LoadReport]:
    """Conversations from a `.jsonl` log or a `.csv` question/answer file, cleaned, with a report of what was
    skipped. `strict=True` raises `LogError` at the first bad row."""
    path = Path(path)
    if not path.exists():
        raise LogError(f"log file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix not in (".jsonl", ".csv"):
        raise LogError(f"{path}: unknown log format {suffix!r}; use .jsonl (DESIGN.md's conversations) or .csv (Q/A)")
    rows = _jsonl_rows(path) if suffix == ".jsonl" else _csv_rows(path)
    report = LoadReport(str(path))
    out: list[Conversation] = []
    seen: set[tuple] = set()
    try:
        for line_no, item in rows:
            report.rows += 1
            try:
                if isinstance(item, Exception):
                    raise item
                conv = clean_conversation(item, redact=redact, report=report)
                _check(conv)
            except ValueError as exc:
                problem = Problem(line_no, str(exc), path=str(path))
                if strict:
                    raise LogError(
                        f"{path}: bad row (use the default lenient mode to skip bad rows)", [problem]
                    ) from None
                report.problems.append(problem)
                continue
            key = _fingerprint(conv)
            if key in seen:
                report.duplicate_conversations += 1
                continue
            seen.add(key)
            out.append(conv)
    except UnicodeDecodeError as exc:
        raise LogError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start}); convert it to UTF-8") from None
    report.conversations = len(out)
    if not out:
        raise LogError(f"{path}: no usable conversation ({report.skipped} bad rows)", report.problems)
    return out, report


def split_conversations(
    conversations: Sequence[Conversation], val_fraction: float, seed: int
) -> tuple[list[Conversation], list[Conversation]]:
    """A seeded split by conversation (never by turn, so no conversation is on both sides); at least one
    conversation on each side when there are two or more and `val_fraction` > 0."""
    order = sorted(range(len(conversations)), key=lambda i: conversations[i].id)
    random.Random(seed).shuffle(order)
    n_val = round(len(order) * val_fraction)
    if val_fraction > 0 and len(order) >= 2:
        n_val = min(max(n_val, 1), len(order) - 1)
    val = {*order[:n_val]}
    return (
        [c for i, c in enumerate(conversations) if i not in val],
        [c for i, c in enumerate(conversations) if i in val],
    )


def write_logs(conversations: Iterable[Conversation | dict[str, Any]], path: str | Path) -> int:
    """Write conversations as JSONL in DESIGN.md's format; returns how many."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with path.open("w", encoding="utf-8") as handle:
        for conv in conversations:
            obj = conv.to_json() if isinstance(conv, Conversation) else conv
            handle.write(json.dumps(obj, ensure_ascii=False) + "\n")
            n += 1
    return n

"""FAQ and query file loaders with validation (DESIGN.md's formats).

Every problem of a file is collected with its line number and reported at once; a file with any problem yields no
entries, so nothing downstream changes after a bad upload.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path

from knowledge_base.records import FaqEntry

MAX_ID = 200
MAX_QUESTION = 1_000
MAX_ANSWER = 10_000
MAX_ALT_QUESTIONS = 500
FAQ_FIELDS = ("id", "question", "answer", "alt_questions", "language", "category")
REQUIRED = ("id", "question", "answer")
_LANG = re.compile(r"^[a-z]{2}$")
_MD_META = re.compile(r"^(id|category|language|alt)\s*:\s*(.*)$", re.IGNORECASE)


@dataclass(frozen=True)
class Problem:
    """One problem in a file (an FAQ, a training log); `line` is 1-based (0 = the file as a whole); `path` when the
    message is read away from its file."""

    line: int
    message: str
    path: str = ""

    def __str__(self) -> str:
        if self.path:
            return f"{self.path}:{self.line}: {self.message}"
        return f"line {self.line}: {self.message}" if self.line else self.message


class FaqValidationError(ValueError):
    """A file that cannot be used; `.problems` lists every problem with its line number."""

    def __init__(self, path: str | Path, problems: list[Problem]):
        self.path = Path(path)
        self.problems = problems
        shown = "\n".join(f"  {path}:{p.line}: {p.message}" if p.line else f"  {path}: {p.message}" for p in problems)
        super().__init__(f"{path}: {len(problems)} problem(s), nothing was changed; fix them and retry:\n{shown}")


@dataclass(frozen=True)
class QueryRow:
    """One labelled query for retrieval evaluation; `faq_id` None means out of scope."""

    query: str
    faq_id: str | None
    line: int = 0


@dataclass(frozen=True)
class ConversationRow:
    """One labelled conversation for multi-turn evaluation: the customer's messages in order, the right entries for
    the last one (empty = out of scope: the right behaviour is not to answer) and, when known, for the first one."""

    turns: tuple[str, ...]
    faq_ids: tuple[str, ...]
    first_faq_ids: tuple[str, ...] = ()
    split: str | None = None
    """`tune` or `test` where the file marks one (calibrate on `tune`, report on `test`)."""
    line: int = 0


CONVERSATION_FIELDS = ("turns", "faq_id", "first_faq_id", "split", "id")
MAX_TURNS = 50


def _read_text(path: Path, problems: list[Problem]) -> str | None:
    if not path.exists():
        problems.append(Problem(0, f"file not found: {path}"))
        return None
    if path.is_dir():
        problems.append(Problem(0, f"{path} is a folder, expected a .jsonl, .csv or .md file"))
        return None
    raw = path.read_bytes()
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        for number, line in enumerate(raw.split(b"\n"), 1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as exc:
                problems.append(Problem(number, f"not valid UTF-8 (byte {exc.start + 1}); save the file as UTF-8"))
        return None


def _check_entry(data: dict, line: int, problems: list[Problem], seen: dict[str, int], ids_line: str = "") -> None:
    """Validate one entry mapping in place of the file's format-specific parsing."""
    unknown = sorted(set(data) - set(FAQ_FIELDS))
    if unknown:
        problems.append(Problem(line, f"unknown field(s) {', '.join(unknown)}; allowed: {', '.join(FAQ_FIELDS)}"))
    for name in REQUIRED:
        value = data.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            problems.append(Problem(line, f"missing or empty '{name}'"))
        elif not isinstance(value, str):
            problems.append(Problem(line, f"'{name}' must be text, got {type(value).__name__}"))
    for name, limit in (("id", MAX_ID), ("question", MAX_QUESTION), ("answer", MAX_ANSWER)):
        value = data.get(name)
        if isinstance(value, str) and len(value) > limit:
            problems.append(Problem(line, f"'{name}' is {len(value)} characters, the limit is {limit}"))
    alts = data.get("alt_questions")
    if alts is not None:
        if not isinstance(alts, list) or not all(isinstance(a, str) for a in alts):
            problems.append(Problem(line, "'alt_questions' must be a list of strings"))
        else:
            if len(alts) > MAX_ALT_QUESTIONS:
                problems.append(Problem(line, f"{len(alts)} alt_questions, the limit is {MAX_ALT_QUESTIONS}"))
            for alt in alts:
                if len(alt) > MAX_QUESTION:
                    problems.append(
                        Problem(line, f"an alt_question is {len(alt)} characters, the limit is {MAX_QUESTION}")
                    )
                    break
    lang = data.get("language")
    if lang not in (None, "") and (not isinstance(lang, str) or not _LANG.match(lang.strip().lower())):
        problems.append(Problem(line, f"'language' must be a two-letter ISO 639-1 code such as 'en', got {lang!r}"))
    cat = data.get("category")
    if cat is not None and not isinstance(cat, str):
        problems.append(Problem(line, "'category' must be text"))
    entry_id = data.get("id")
    if isinstance(entry_id, str) and entry_id.strip():
        key = entry_id.strip()
        if key in seen:
            problems.append(Problem(line, f"duplicate id {key!r} (first on line {seen[key]}); ids must be unique"))
        else:
            seen[key] = line


def _entry(data: dict) -> FaqEntry:
    alts = tuple(a.strip() for a in data.get("alt_questions") or () if a.strip())
    lang = (data.get("language") or "").strip().lower() or None
    cat = (data.get("category") or "").strip() or None
    return FaqEntry(
        id=data["id"].strip(),
        question=data["question"].strip(),
        answer=data["answer"].strip(),
        alt_questions=alts,
        language=lang,
        category=cat,
    )


def _parse_jsonl(text: str, problems: list[Problem]) -> list[tuple[int, dict]]:
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(Problem(number, f"not valid JSON ({exc.msg} at column {exc.colno})"))
            continue
        if not isinstance(data, dict):
            problems.append(Problem(number, 'each line must be a JSON object like {"id": ..., "question": ...}'))
            continue
        rows.append((number, data))
    return rows


def _parse_csv(text: str, problems: list[Problem]) -> list[tuple[int, dict]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        return []
    except csv.Error as exc:
        problems.append(Problem(1, f"cannot read the CSV header: {exc}"))
        return []
    unknown = [h for h in header if h not in FAQ_FIELDS]
    if unknown:
        problems.append(Problem(1, f"unknown column(s) {', '.join(unknown)}; allowed: {', '.join(FAQ_FIELDS)}"))
    missing = [name for name in REQUIRED if name not in header]
    if missing:
        problems.append(
            Problem(1, f"missing column(s) {', '.join(missing)}; the header must name id, question, answer")
        )
        return []
    rows = []
    start = reader.line_num + 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            problems.append(Problem(start, f"bad CSV: {exc}"))
            break
        if any(c.strip() for c in cells):
            if len(cells) != len(header):
                problems.append(
                    Problem(
                        start,
                        f"{len(cells)} cells, the header has {len(header)}; quote cells "
                        "that contain commas or line breaks",
                    )
                )
            else:
                data: dict = {h: c for h, c in zip(header, cells, strict=True) if h in FAQ_FIELDS}
                if "alt_questions" in data:
                    data["alt_questions"] = [a for a in data["alt_questions"].splitlines() if a.strip()]
                for optional in ("language", "category"):
                    if optional in data and not data[optional].strip():
                        data[optional] = None
                rows.append((start, data))
        start = reader.line_num + 1
    return rows


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60] or "entry"


def _parse_markdown(text: str, problems: list[Problem]) -> list[tuple[int, dict]]:
    """`## Question` headings; the text below is the answer. Optional `id:`, `category:`, `language:` and `alt:`
    lines right under the heading."""
    rows: list[tuple[int, dict]] = []
    current: dict | None = None
    body: list[str] = []

    def close() -> None:
        if current is not None:
            current["answer"] = "\n".join(body).strip()
            current.setdefault("id", _slug(current["question"]))
            rows.append((current.pop("_line"), current))

    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("## "):
            close()
            current, body = {"question": line[3:].strip(), "_line": number}, []
        elif current is not None:
            meta = _MD_META.match(line.strip()) if not "".join(body).strip() else None
            if meta:
                key, value = meta.group(1).lower(), meta.group(2).strip()
                if key == "alt":
                    current.setdefault("alt_questions", []).append(value)
                else:
                    current[key] = value
            else:
                body.append(line)
    close()
    return rows


def _parse(path: Path) -> tuple[list[FaqEntry], list[Problem]]:
    problems: list[Problem] = []
    suffix = path.suffix.lower()
    if suffix not in (".jsonl", ".csv", ".md", ".markdown"):
        return [], [Problem(0, f"unsupported file type {suffix or '(none)'}: use .jsonl, .csv or .md")]
    text = _read_text(path, problems)
    if text is None:
        return [], problems
    parse = {".jsonl": _parse_jsonl, ".csv": _parse_csv}.get(suffix, _parse_markdown)
    rows = parse(text, problems)
    seen: dict[str, int] = {}
    for number, data in rows:
        _check_entry(data, number, problems, seen)
    if not rows and not problems:
        problems.append(Problem(0, "the file has no FAQ entries"))
    if problems:
        return [], sorted(problems, key=lambda p: p.line)
    return [_entry(data) for _, data in rows], []


def validate_faq(path: str | Path) -> list[Problem]:
    """Every problem of an FAQ file (empty list: the file is good)."""
    return _parse(Path(path))[1]


def load_faq(path: str | Path) -> list[FaqEntry]:
    """Load a `.jsonl`, `.csv` or `.md` FAQ file; raise `FaqValidationError` listing all problems of the file."""
    entries, problems = _parse(Path(path))
    if problems:
        raise FaqValidationError(path, problems)
    return entries


def load_queries(path: str | Path) -> list[QueryRow]:
    """Load a query file (`query`, `faq_id`; empty/null `faq_id` = out of scope) in JSONL or CSV."""
    path = Path(path)
    problems: list[Problem] = []
    text = _read_text(path, problems)
    rows: list[tuple[int, dict]] = []
    if text is not None:
        if path.suffix.lower() == ".csv":
            reader = csv.DictReader(io.StringIO(text, newline=""))
            if reader.fieldnames is None or "query" not in reader.fieldnames:
                problems.append(Problem(1, "the header must name the columns query and faq_id"))
            else:
                rows = [(i, r) for i, r in enumerate(reader, 2)]
        elif path.suffix.lower() == ".jsonl":
            rows = _parse_jsonl(text, problems)
        else:
            problems.append(Problem(0, "unsupported file type: use .jsonl or .csv"))
    out = []
    for number, data in rows:
        query = data.get("query")
        if not isinstance(query, str) or not query.strip():
            problems.append(Problem(number, "missing or empty 'query'"))
            continue
        gold = data.get("faq_id")
        gold = str(gold).strip() if gold not in (None, "") else None
        out.append(QueryRow(query.strip(), gold or None, number))
    if not out and not problems:
        problems.append(Problem(0, "the file has no queries"))
    if problems:
        raise FaqValidationError(path, problems)
    return out


def _gold_ids(value: object, name: str, line: int, problems: list[Problem]) -> tuple[str, ...]:
    """A gold label: one id, a list of acceptable ids, or empty/null (out of scope)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return ()
    if isinstance(value, str):
        return (value.strip(),)
    if isinstance(value, list) and all(isinstance(v, str) and v.strip() for v in value):
        return tuple(v.strip() for v in value)
    problems.append(Problem(line, f"'{name}' must be an id, a list of non-empty ids or empty, got {value!r}"))
    return ()


def load_conversations(path: str | Path) -> list[ConversationRow]:
    """Load a multi-turn evaluation file (`.jsonl`, one conversation a line: `{"turns": [customer messages...],
    "faq_id": id | [ids] | null, "first_faq_id": ..., "split": "tune" | "test"}`); raise `FaqValidationError`
    listing every problem with its line number."""
    path = Path(path)
    problems: list[Problem] = []
    rows: list[tuple[int, dict]] = []
    if path.suffix.lower() != ".jsonl":
        problems.append(Problem(0, f"unsupported file type {path.suffix or '(none)'}: conversations are .jsonl"))
    else:
        text = _read_text(path, problems)
        if text is not None:
            rows = _parse_jsonl(text, problems)
    out = []
    for number, data in rows:
        before = len(problems)
        unknown = sorted(set(data) - set(CONVERSATION_FIELDS))
        if unknown:
            problems.append(
                Problem(number, f"unknown field(s) {', '.join(unknown)}; allowed: {', '.join(CONVERSATION_FIELDS)}")
            )
        turns = data.get("turns")
        if not isinstance(turns, list) or not turns:
            problems.append(Problem(number, "'turns' must be a non-empty list of the customer's messages"))
        elif not all(isinstance(t, str) and t.strip() for t in turns):
            problems.append(Problem(number, "every turn must be non-empty text"))
        elif len(turns) > MAX_TURNS:
            problems.append(Problem(number, f"{len(turns)} turns, the limit is {MAX_TURNS}"))
        elif any(len(t) > MAX_QUESTION for t in turns):
            problems.append(Problem(number, f"a turn is longer than {MAX_QUESTION} characters"))
        if "faq_id" not in data:
            problems.append(
                Problem(number, "missing 'faq_id' (the right entry for the last turn; null = out of scope)")
            )
        gold = _gold_ids(data.get("faq_id"), "faq_id", number, problems)
        first = _gold_ids(data.get("first_faq_id"), "first_faq_id", number, problems)
        split = data.get("split")
        if split is not None and split not in ("tune", "test"):
            problems.append(Problem(number, f"'split' must be 'tune' or 'test', got {split!r}"))
        if len(problems) == before:
            out.append(ConversationRow(tuple(t.strip() for t in turns), gold, first, split, number))
    if not out and not problems:
        problems.append(Problem(0, "the file has no conversations"))
    if problems:
        raise FaqValidationError(path, sorted(problems, key=lambda p: p.line))
    return out

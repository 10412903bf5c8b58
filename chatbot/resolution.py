"""Resolution figures: how often the bot's answers resolved the customer's question, and how the people's desk works.

One function per figure, each reading the store with its own query and writing its definition beside the numbers
(`DEFINITIONS`, shown on the admin page and in `chatbot report --json`). Each figure has a total, a value per day
(UTC, by the time of the answer, draft review or handoff it counts) and, where a figure rests on an FAQ entry (the
top source of the answer or draft), a value per entry. Only portable SQL: timestamps are compared as the stored
epoch seconds and bucketed into days here.

- `contained`: the bot answered and, within `[resolution] contained_window_h`, the customer neither was handed to a
  person nor asked again on that FAQ entry.
- `confirmed`: the customer's 👍 on the answer, or a thanks ("thanks!", "that helped") as their next message.
- `durable`: contained, and still so after `[resolution] durable_days` (no handoff, no reopening, no question on the
  same entry).
- `handoffs`: handoffs per routed customer message, by reason; and the generated replies that failed the claim check.
- `acceptance`: (approved + edited) / reviewed drafts.
- `edit_distance`: words changed between an edited draft and what the agent sent.
- `first_human_reply`: seconds from a handoff to the first message from a person.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import statistics
import time
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from chatbot.config import AppConfig
from chatbot.routing import small_talk

DEFINITIONS = {
    "contained": (
        "Contained resolution: share of the bot's sent answers (resting on an FAQ entry) after which, within the "
        "contained window, the conversation was not handed to a person and the customer asked nothing the bot "
        "answered from the same entry again. Only answers older than the window count."
    ),
    "confirmed": (
        "Confirmed resolution: share of the bot's sent answers that the customer rated 👍, or whose next customer "
        'message was only a thanks ("thanks!", "ok that helped").'
    ),
    "durable": (
        "Durable resolution: share of the bot's sent answers older than the durable period that stayed contained "
        "for the whole period: no handoff (a reopened chat is handed off too) and no question answered from the "
        "same entry."
    ),
    "handoffs": (
        "Handoff rate by reason: handoffs opened, per customer message the bot routed, by why: asked for a person, "
        "low confidence (no good source), a language the model does not write, an agent rejected the draft, the "
        "entry is in shadow mode, an agent took or reopened the chat, other. `unsupported_claim`: generated replies "
        "that failed the claim check (the sources' own words went out, or waited as a draft), per routed message."
    ),
    "acceptance": (
        "Copilot acceptance: (approved + edited) / drafts reviewed (approved, edited or rejected), counted on the "
        "day of the review."
    ),
    "edit_distance": (
        "Mean edit distance of edited drafts: words inserted, deleted or replaced to turn the bot's draft into what "
        "the agent sent (word-level Levenshtein); `relative`: that over the longer text's words."
    ),
    "first_human_reply": (
        "Time to first human reply: seconds from a handoff to the first message a person sent in that "
        "conversation after it (an agent's reply or an approved draft); handoffs still unanswered are counted apart."
    ),
}

HANDOFF_REASONS = ("person", "low_confidence", "language", "rejected_draft", "shadow", "agent", "other")
_REASON_PATTERNS = (
    ("person", "asked for a person"),
    ("low_confidence", "no good source"),
    ("language", "is not a model language"),
    ("rejected_draft", "draft rejected by"),
    ("shadow", "is in shadow mode"),
    ("agent", "taken by agent"),
    ("agent", "reopened by agent"),
)
_HELPED = re.compile(
    r"\b(that|this|it) (helped|helps|worked|works|solved it|did it)\b|\bproblem solved\b|\bthat'?s? helpful\b"
)


def handoff_reason(reason: str) -> str:
    """The category of a stored handoff reason (one of `HANDOFF_REASONS`)."""
    for category, needle in _REASON_PATTERNS:
        if needle in reason:
            return category
    return "other"


def is_thanks(text: str) -> bool:
    """A customer message that confirms the answer: only a thanks (`routing.small_talk`), or a short "that helped"."""
    norm = unicodedata.normalize("NFKC", text).casefold()
    return small_talk(text) == "thanks" or (len(norm.split()) <= 8 and bool(_HELPED.search(norm)))


def word_distance(a: str, b: str) -> int:
    """Word-level Levenshtein distance: words inserted, deleted or replaced to turn `a` into `b`."""
    x, y = a.split(), b.split()
    previous = list(range(len(y) + 1))
    for i, word in enumerate(x, 1):
        current = [i]
        for j, other in enumerate(y, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (word != other)))
        previous = current
    return previous[-1]


def _day(at: float) -> str:
    return dt.datetime.fromtimestamp(at, dt.UTC).date().isoformat()


def _top(faq_ids: str) -> str | None:
    ids = json.loads(faq_ids)
    return ids[0] if ids else None


def _shares(items: Iterable[tuple[str, str | None, bool]]) -> dict[str, Any]:
    """Total, per-day and per-entry share of True among (day, faq_id, hit) items."""
    total, days, entries = [0, 0], defaultdict(lambda: [0, 0]), defaultdict(lambda: [0, 0])
    for day, faq_id, hit in items:
        for bucket in (total, days[day], *([entries[faq_id]] if faq_id else [])):
            bucket[0] += 1
            bucket[1] += int(hit)
    return {
        "n": total[0], "value": total[1] / total[0] if total[0] else None,
        "per_day": [{"day": d, "n": n, "value": k / n} for d, (n, k) in sorted(days.items())],
        "per_entry": sorted(({"faq_id": f, "n": n, "value": k / n} for f, (n, k) in entries.items()),
                            key=lambda e: (-e["n"], e["faq_id"])),
    }  # fmt: skip


def _means(items: Iterable[tuple[str, str | None, float]], median: bool = False) -> dict[str, Any]:
    """Total, per-day and per-entry mean (and median) of (day, faq_id, value) items."""
    total, days, entries = [], defaultdict(list), defaultdict(list)
    for day, faq_id, value in items:
        total.append(value)
        days[day].append(value)
        if faq_id:
            entries[faq_id].append(value)

    def summary(values: Sequence[float]) -> dict[str, Any]:
        out = {"n": len(values), "value": statistics.fmean(values) if values else None}
        if median:
            out["median"] = statistics.median(values) if values else None
        return out

    return {
        **summary(total),
        "per_day": [{"day": d, **summary(v)} for d, v in sorted(days.items())],
        "per_entry": sorted(({"faq_id": f, **summary(v)} for f, v in entries.items()),
                            key=lambda e: (-e["n"], e["faq_id"])),
    }  # fmt: skip


class Resolution:
    """The figures over a `chatbot.store.Store` for the last `days` days before `now` (default: the current time)."""

    def __init__(self, store: Any, config: AppConfig, days: int = 30, now: float | None = None):
        if days < 1:
            raise ValueError(f"days must be >= 1 (the period the figures cover), got {days}")
        self.store = store
        self.config = config
        self.days = days
        self.now = time.time() if now is None else now
        self.since = self.now - days * 86400

    # -- the bot's answers and what followed them -----------------------------------------------------------------
    def _answers(self) -> list[Any]:
        """The bot's sent answers in the period that rest on an FAQ entry."""
        return self.store._read(
            "SELECT id, conversation_id, faq_ids, created_at FROM messages WHERE role = 'bot' AND kind = 'reply' "
            "AND route = 'answer' AND status = 'sent' AND faq_ids <> '[]' AND created_at >= ? AND created_at <= ? "
            "ORDER BY id",
            (self.since, self.now),
        )

    def _held(self, window_s: float) -> dict[str, Any]:
        """Contained for `window_s` after the answer: no handoff and no bot reply from the same entry in it."""
        answers = [a for a in self._answers() if a["created_at"] + window_s <= self.now]
        broken: set[int] = set()
        for answer in answers:
            end = answer["created_at"] + window_s
            args = (answer["conversation_id"], answer["created_at"], end)
            if self.store._read("SELECT 1 FROM handoffs WHERE conversation_id = ? AND created_at > ? "
                                "AND created_at <= ? LIMIT 1", args):  # fmt: skip
                broken.add(answer["id"])
                continue
            later = self.store._read(
                "SELECT faq_ids FROM messages WHERE conversation_id = ? AND role = 'bot' AND id > ? "
                "AND created_at <= ?",
                (answer["conversation_id"], answer["id"], end),
            )
            if any(_top(m["faq_ids"]) == _top(answer["faq_ids"]) for m in later):
                broken.add(answer["id"])
        return _shares((_day(a["created_at"]), _top(a["faq_ids"]), a["id"] not in broken) for a in answers)

    def contained(self) -> dict[str, Any]:
        return self._held(self.config.resolution.contained_window_h * 3600)

    def durable(self) -> dict[str, Any]:
        return self._held(self.config.resolution.durable_days * 86400)

    def confirmed(self) -> dict[str, Any]:
        answers = self._answers()
        items = []
        for answer in answers:
            thumbs = self.store._read(
                "SELECT up FROM feedback WHERE message_id = ? AND comment IS NULL ORDER BY id DESC LIMIT 1",
                (answer["id"],),
            )
            up = bool(thumbs and thumbs[0]["up"])
            if not up:
                following = self.store._read(
                    "SELECT text FROM messages WHERE conversation_id = ? AND role = 'user' AND id > ? ORDER BY id "
                    "LIMIT 1",
                    (answer["conversation_id"], answer["id"]),
                )
                up = bool(following and is_thanks(following[0]["text"]))
            items.append((_day(answer["created_at"]), _top(answer["faq_ids"]), up))
        return _shares(items)

    # -- handoffs -------------------------------------------------------------------------------------------------
    def handoffs(self) -> dict[str, Any]:
        routed = self.store._read(
            "SELECT created_at, rejected_text FROM messages WHERE role = 'bot' AND route IS NOT NULL "
            "AND created_at >= ? AND created_at <= ?",
            (self.since, self.now),
        )
        opened = self.store._read(
            "SELECT reason, created_at FROM handoffs WHERE created_at >= ? AND created_at <= ?", (self.since, self.now)
        )
        per_day: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for m in routed:
            per_day[_day(m["created_at"])]["routed"] += 1
            if m["rejected_text"] is not None:
                per_day[_day(m["created_at"])]["unsupported_claim"] += 1
        for h in opened:
            per_day[_day(h["created_at"])][handoff_reason(h["reason"])] += 1
            per_day[_day(h["created_at"])]["handoffs"] += 1

        def rates(counts: dict[str, int]) -> dict[str, Any]:
            n = counts.get("routed", 0)
            keys = ("handoffs", *HANDOFF_REASONS, "unsupported_claim")
            return {"n": n, "value": counts.get("handoffs", 0) / n if n else None,
                    "by_reason": {k: counts.get(k, 0) / n if n else None for k in keys if k != "handoffs"},
                    "counts": {k: counts.get(k, 0) for k in keys}}  # fmt: skip

        total: dict[str, int] = defaultdict(int)
        for counts in per_day.values():
            for k, v in counts.items():
                total[k] += v
        return {**rates(total), "per_day": [{"day": d, **rates(c)} for d, c in sorted(per_day.items())],
                "per_entry": []}  # fmt: skip

    # -- the copilot ----------------------------------------------------------------------------------------------
    def _reviewed(self, states: Sequence[str]) -> list[Any]:
        marks = ", ".join("?" * len(states))
        return self.store._read(
            f"SELECT state, text, final_text, sources, reviewed_at FROM drafts WHERE state IN ({marks}) "
            "AND reviewed_at >= ? AND reviewed_at <= ? ORDER BY id",
            (*states, self.since, self.now),
        )

    @staticmethod
    def _draft_entry(sources: str) -> str | None:
        items = json.loads(sources)
        return items[0].get("faq_id") if items else None

    def acceptance(self) -> dict[str, Any]:
        rows = self._reviewed(("approved", "edited", "rejected"))
        return _shares((_day(r["reviewed_at"]), self._draft_entry(r["sources"]), r["state"] != "rejected")
                       for r in rows)  # fmt: skip

    def edit_distance(self) -> dict[str, Any]:
        rows = self._reviewed(("edited",))
        distances = [word_distance(r["text"], r["final_text"]) for r in rows]
        days = [(_day(r["reviewed_at"]), self._draft_entry(r["sources"])) for r in rows]
        out = _means((day, faq_id, d) for (day, faq_id), d in zip(days, distances, strict=True))
        longer = [max(len(r["text"].split()), len(r["final_text"].split()), 1) for r in rows]
        relative = [d / n for d, n in zip(distances, longer, strict=True)]
        out["relative"] = statistics.fmean(relative) if relative else None
        return out

    def first_human_reply(self) -> dict[str, Any]:
        opened = self.store._read(
            "SELECT h.created_at, (SELECT MIN(m.created_at) FROM messages m "
            "WHERE m.conversation_id = h.conversation_id AND m.role = 'agent' AND m.status = 'sent' "
            "AND m.created_at >= h.created_at) AS answered_at "
            "FROM handoffs h WHERE h.created_at >= ? AND h.created_at <= ? ORDER BY h.id",
            (self.since, self.now),
        )
        answered = [(_day(h["created_at"]), None, h["answered_at"] - h["created_at"]) for h in opened
                    if h["answered_at"] is not None]  # fmt: skip
        out = _means(answered, median=True)
        out["unanswered"] = sum(h["answered_at"] is None for h in opened)
        return out

    # -- all of them ----------------------------------------------------------------------------------------------
    FIGURES: dict[str, Callable[[Resolution], dict[str, Any]]] = {
        "contained": contained, "confirmed": confirmed, "durable": durable, "handoffs": handoffs,
        "acceptance": acceptance, "edit_distance": edit_distance, "first_human_reply": first_human_reply,
    }  # fmt: skip

    def figures(self) -> dict[str, dict[str, Any]]:
        """Every figure with its `definition`, keyed by name (the order of `DEFINITIONS`)."""
        return {name: {"definition": DEFINITIONS[name], **fn(self)} for name, fn in self.FIGURES.items()}

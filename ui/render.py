"""Turning stored messages into what the Gradio Chatbot shows. Pure functions, no Gradio import.

Two ways to show text, both safe whoever wrote it:

- `as_text` (the customer's own words): Markdown punctuation is backslash-escaped and `<`, `>`, `&` become
  entities, so `<script>` or `<img onerror=...>` appear literally and never run.
- `as_markdown` (the bot's replies, agents' messages, FAQ answers): lists, emphasis, headings and `[links](https://...)`
  render; raw HTML is still shown as text, images and reference links are not made, and a link's target must be
  an http(s) or mailto address (others stay text).

Web addresses become explicit Markdown links whose target is the address exactly as written: left to the renderer's
auto-linking, the escapes ended up inside the target (`http://evil%5C.example/`, which a browser reads as another
host and path).
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ui.i18n import text

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~$])")  # not < > &: html.escape turns those into entities
# http(s) addresses: a host name, an optional port, then anything but spaces, quotes, brackets and backslashes.
_URL = re.compile(r"\bhttps?://[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?(?::\d{1,5})?(?:[/?#][^\s<>\"'`\\\[\]{}|^]*)?", re.I)
_MD_LINKS = re.compile(r"([\[\]`])")
# [label](target) with an http(s) or mailto target (balanced parentheses inside it), not an image
_MD_LINK = re.compile(r"(?<!!)\[([^\[\]\n]{1,500})\]\(\s*((?:https?://|mailto:)(?:[^\s()<>\\]|\([^\s()<>\\]*\))+)\s*\)",
                      re.I)  # fmt: skip
_URL_TRAILING = ".,:;!?*_~()"
"""Sentence punctuation after an address is not part of it (a closing bracket only when unbalanced)."""
HOLD_PREFIX = "⏳ "


def _escaped(text: str) -> str:
    # "\://" keeps the renderer from auto-linking what is left of an address (its target would keep the escapes)
    return html.escape(_MD_SPECIAL.sub(r"\\\1", text), quote=False).replace("://", "\\://")


def _trim(url: str) -> str:
    while url and url[-1] in _URL_TRAILING:
        if url[-1] == ")" and url.count("(") >= url.count(")"):
            break
        url = url[:-1]
    return url


def _target(url: str) -> str:
    return url.replace("(", "\\(").replace(")", "\\)")  # the renderer unescapes a link target's punctuation


def _link(url: str) -> str:
    return f"[{_escaped(url)}]({_target(url)})"


def _linked(text: str, escape: Any) -> str:
    """`text` through `escape`, with each web address in it an explicit link to exactly that address."""
    out, at = [], 0
    for match in _URL.finditer(text):
        url = _trim(match.group())
        out += [escape(text[at : match.start()]), _link(url)]
        at = match.start() + len(url)
    return "".join([*out, escape(text[at:])])


def as_text(text: str) -> str:
    """`text` escaped so the Chatbot's Markdown renderer shows it verbatim (no HTML, no formatting); web addresses
    become links to exactly the address shown."""
    return _linked(text, _escaped)


def _markdown_escaped(text: str) -> str:
    # brackets and backticks: no link, image, reference definition or code span but the ones `as_markdown` builds
    return html.escape(_MD_LINKS.sub(r"\\\1", text), quote=False).replace("://", "\\://")


def as_markdown(text: str) -> str:
    """`text` as safe Markdown: its lists, emphasis and headings render, `[label](https://...)` links keep exactly
    their target, bare web addresses become links; HTML shows as text, and images, code, reference links and links
    to other schemes (`javascript:`, `data:`) are not made (their text is shown)."""
    out, at = [], 0
    for match in _MD_LINK.finditer(text):
        label, target = match.group(1), match.group(2)
        out += [_linked(text[at : match.start()], _markdown_escaped), f"[{_escaped(label)}]({_target(target)})"]
        at = match.end()
    return "".join([*out, _linked(text[at:], _markdown_escaped)])


def plain_title(text: str, limit: int = 90) -> str:
    """A one-line title for an expander: no markup characters, shortened."""
    one_line = " ".join(re.sub(r"[<>&*_`#\[\]]", " ", text).split())
    return one_line if len(one_line) <= limit else one_line[: limit - 1] + "…"


RATEABLE = '<span class="chat-rateable"></span>'
"""Marks a row whose thumbs count (the page's style hides them on every other row: notices, sources, questions)."""
ARRIVED = '<span class="chat-arrived"></span>'
"""Marks a team reply that arrived since the page last looked (the page scrolls to it and shows a badge)."""


@dataclass
class Rendered:
    """A conversation as the Chatbot shows it.

    `history` is the list of message dicts; `message_ids[i]` is the stored message a thumb on row `i` rates (the
    reply itself for its source rows, None for rows that cannot be rated); `feedback` is each assistant row's thumb
    (`"Like"`, `"Dislike"` or None, in the order of the assistant rows, as Gradio's `feedback_value` wants it);
    `last_id` is the newest message id; `arrived` counts the team replies marked `ARRIVED`.
    """

    history: list[dict[str, Any]] = field(default_factory=list)
    message_ids: list[int | None] = field(default_factory=list)
    feedback: list[str | None] = field(default_factory=list)
    last_id: int = 0
    arrived: int = 0

    def add(self, role: str, content: str, message_id: int | None = None, metadata: dict | None = None,
            rating: str | None = None) -> None:  # fmt: skip
        row: dict[str, Any] = {"role": role, "content": content}
        if metadata:
            row["metadata"] = metadata
        self.history.append(row)
        self.message_ids.append(message_id)
        if role == "assistant":
            self.feedback.append(rating)


def source_rows(sources: Sequence[tuple[str, str, float]], language: str = "en") -> list[dict[str, Any]]:
    """Expander rows for the FAQ entries a reply rests on: `(question, answer, score)` each, the answer's text shown
    as Markdown when opened."""
    return [
        {"role": "assistant", "content": as_markdown(answer),
         "metadata": {"title": text("source", language, question=plain_title(question)), "log": f"score {score:.2f}",
                      "status": "done"}}
        for question, answer, score in sources
    ]  # fmt: skip


def render_messages(
    messages: Sequence[Any],
    lookup: Any = None,
    source_ratio: float = 0.0,
    *,
    typed: Mapping[int, str] | None = None,
    ratings: Mapping[int, bool] | None = None,
    arrived_after: int | None = None,
    language: str = "en",
) -> Rendered:
    """The customer's view of stored messages (`chatbot.store.Message`).

    The customer's own messages are shown as text, from `typed` (message id -> the text as typed, which the page
    keeps) where it has them, else as stored (masked); the bot's and the team's as safe Markdown. A drafted reply
    shows its hold notice until an agent sends the draft; then the agent's text takes the notice's place.
    `lookup(faq_id)` returns the FAQ entry (question, answer) for sources, or None; sources scoring below
    `source_ratio` times the reply's best source are left out (the reply does not rest on them). `ratings` (message
    id -> thumb up) fills `feedback`; team replies newer than `arrived_after` are marked `ARRIVED`; fixed labels are
    in `language`.
    """
    out = Rendered()
    typed, ratings = typed or {}, ratings or {}
    team = f"👤 *{text('team', language)}:*"
    sent_drafts = {m.draft_id: m for m in messages if m.role == "agent" and m.draft_id is not None}
    shown_agent: set[int] = set()

    def add_team(agent_msg: Any) -> None:
        new = arrived_after is not None and agent_msg.id > arrived_after
        out.arrived += new
        out.add("assistant", f"{team} {as_markdown(agent_msg.text)}{RATEABLE}{ARRIVED if new else ''}", agent_msg.id,
                rating=_thumb(ratings.get(agent_msg.id)))  # fmt: skip
        shown_agent.add(agent_msg.id)

    for m in messages:
        out.last_id = max(out.last_id, m.id)
        if m.role == "system":
            continue
        if m.role == "user":
            out.add("user", as_text(typed.get(m.id, m.text)), None)
        elif m.role == "bot" and m.draft_id is not None:
            agent_msg = sent_drafts.get(m.draft_id)
            if agent_msg is not None:
                add_team(agent_msg)
            else:
                out.add("assistant", HOLD_PREFIX + as_markdown(m.text), None)
        elif m.role == "bot":
            rateable = m.kind == "reply"
            stopped = f" *{text('stopped', language)}*" if m.status == "cancelled" else ""
            out.add("assistant", as_markdown(m.text) + stopped + (RATEABLE if rateable else ""),
                    m.id if rateable else None, rating=_thumb(ratings.get(m.id)) if rateable else None)  # fmt: skip
            if rateable and m.route == "answer" and lookup is not None:
                sources = []
                best = max(m.scores, default=0.0)
                for faq_id, score in zip(m.faq_ids, m.scores, strict=False):
                    entry = lookup(faq_id)
                    if entry is not None and score >= source_ratio * best:
                        sources.append((entry.question, entry.answer, float(score)))
                for row in source_rows(sources, language):
                    out.add(row["role"], row["content"], m.id, row["metadata"])
        elif m.role == "agent" and m.id not in shown_agent:
            add_team(m)
    return out


def _thumb(up: bool | None) -> str | None:
    return None if up is None else ("Like" if up else "Dislike")


def role_label(role: str, agent: str | None = None) -> str:
    """How the agent console names who wrote a message."""
    return {"user": "Customer", "bot": "Bot", "system": "System"}.get(role, f"Agent {agent or ''}".strip())


def console_history(messages: Sequence[Any]) -> list[dict[str, Any]]:
    """A conversation for the agent console: customer on the right, bot and agents on the left, labelled."""
    rows = []
    for m in messages:
        if m.role == "system":
            continue
        label = role_label(m.role, m.agent)
        tag = f"*{label}" + (f" · {m.route}" if m.role == "bot" and m.route else "") + "*"
        shown = as_text(m.text) if m.role == "user" else as_markdown(m.text)
        rows.append({"role": "user" if m.role == "user" else "assistant", "content": f"{tag}\n\n{shown}"})
    return rows

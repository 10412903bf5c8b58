"""Turning stored messages into what the Gradio Chatbot shows. Pure functions, no Gradio import.

Everything a customer, an agent or the model wrote is shown as text: Markdown punctuation is backslash-escaped
and `<`, `>`, `&` become entities, so `<script>` or `<img onerror=...>` appear literally and never run. Web
addresses become explicit Markdown links whose target is the address exactly as written: left to the renderer's
auto-linking, the escapes ended up inside the target (`http://evil%5C.example/`, which a browser reads as another
host and path).
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~$])")  # not < > &: html.escape turns those into entities
# http(s) addresses: a host name, an optional port, then anything but spaces, quotes, brackets and backslashes.
_URL = re.compile(r"\bhttps?://[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?(?::\d{1,5})?(?:[/?#][^\s<>\"'`\\\[\]{}|^]*)?", re.I)
_URL_TRAILING = ".,:;!?*_~()"
"""Sentence punctuation after an address is not part of it (a closing bracket only when unbalanced)."""
HOLD_PREFIX = "⏳ "
AGENT_LABEL = "👤 *Support team:*"


def _escaped(text: str) -> str:
    # "\://" keeps the renderer from auto-linking what is left of an address (its target would keep the escapes)
    return html.escape(_MD_SPECIAL.sub(r"\\\1", text), quote=False).replace("://", "\\://")


def _trim(url: str) -> str:
    while url and url[-1] in _URL_TRAILING:
        if url[-1] == ")" and url.count("(") >= url.count(")"):
            break
        url = url[:-1]
    return url


def _link(url: str) -> str:
    target = url.replace("(", "\\(").replace(")", "\\)")  # the renderer unescapes a link target's punctuation
    return f"[{_escaped(url)}]({target})"


def as_text(text: str) -> str:
    """`text` escaped so the Chatbot's Markdown renderer shows it verbatim (no HTML, no formatting); web addresses
    become links to exactly the address shown."""
    out, at = [], 0
    for match in _URL.finditer(text):
        url = _trim(match.group())
        out += [_escaped(text[at : match.start()]), _link(url)]
        at = match.start() + len(url)
    return "".join([*out, _escaped(text[at:])])


def plain_title(text: str, limit: int = 90) -> str:
    """A one-line title for an expander: no markup characters, shortened."""
    one_line = " ".join(re.sub(r"[<>&*_`#\[\]]", " ", text).split())
    return one_line if len(one_line) <= limit else one_line[: limit - 1] + "…"


@dataclass
class Rendered:
    """A conversation as the Chatbot shows it.

    `history` is the list of message dicts; `message_ids[i]` is the stored message a thumb on row `i` rates (the
    reply itself for its source rows, None for rows that cannot be rated); `last_id` is the newest message id.
    """

    history: list[dict[str, Any]] = field(default_factory=list)
    message_ids: list[int | None] = field(default_factory=list)
    last_id: int = 0

    def add(self, role: str, content: str, message_id: int | None = None, metadata: dict | None = None) -> None:
        row: dict[str, Any] = {"role": role, "content": content}
        if metadata:
            row["metadata"] = metadata
        self.history.append(row)
        self.message_ids.append(message_id)


def source_rows(sources: Sequence[tuple[str, str, float]]) -> list[dict[str, Any]]:
    """Expander rows for the FAQ entries a reply rests on: `(question, answer, score)` each."""
    return [
        {"role": "assistant", "content": as_text(answer),
         "metadata": {"title": f"Source: {plain_title(question)}", "log": f"score {score:.2f}", "status": "done"}}
        for question, answer, score in sources
    ]  # fmt: skip


def render_messages(messages: Sequence[Any], lookup: Any = None, source_ratio: float = 0.0) -> Rendered:
    """The customer's view of stored messages (`chatbot.store.Message`).

    A drafted reply shows its hold notice until an agent sends the draft; then the agent's text takes the
    notice's place. `lookup(faq_id)` returns the FAQ entry (question, answer) for sources, or None; sources scoring
    below `source_ratio` times the reply's best source are left out (the reply does not rest on them).
    """
    out = Rendered()
    sent_drafts = {m.draft_id: m for m in messages if m.role == "agent" and m.draft_id is not None}
    shown_agent: set[int] = set()
    for m in messages:
        out.last_id = max(out.last_id, m.id)
        if m.role == "system":
            continue
        if m.role == "user":
            out.add("user", as_text(m.text), None)
        elif m.role == "bot" and m.draft_id is not None:
            agent_msg = sent_drafts.get(m.draft_id)
            if agent_msg is not None:
                out.add("assistant", f"{AGENT_LABEL} {as_text(agent_msg.text)}", agent_msg.id)
                shown_agent.add(agent_msg.id)
            else:
                out.add("assistant", HOLD_PREFIX + as_text(m.text), None)
        elif m.role == "bot":
            rateable = m.kind == "reply"
            out.add("assistant", as_text(m.text) + (" *(stopped)*" if m.status == "cancelled" else ""),
                    m.id if rateable else None)  # fmt: skip
            if rateable and m.route == "answer" and lookup is not None:
                sources = []
                best = max(m.scores, default=0.0)
                for faq_id, score in zip(m.faq_ids, m.scores, strict=False):
                    entry = lookup(faq_id)
                    if entry is not None and score >= source_ratio * best:
                        sources.append((entry.question, entry.answer, float(score)))
                for row in source_rows(sources):
                    out.history.append(row)
                    out.message_ids.append(m.id)
        elif m.role == "agent" and m.id not in shown_agent:
            out.add("assistant", f"{AGENT_LABEL} {as_text(m.text)}", m.id)
    return out


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
        rows.append({"role": "user" if m.role == "user" else "assistant", "content": f"{tag}\n\n{as_text(m.text)}"})
    return rows

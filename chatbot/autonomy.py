"""Autonomy per FAQ entry: how far the bot may answer on its own when an entry is its top source.

- `shadow`: the bot drafts, an agent writes the reply; the draft is shown to the agent as a suggestion only.
- `draft`: an agent approves (or edits, or rejects) the bot's draft before the customer sees it.
- `auto`: the bot sends.

`next_mode` is the promotion rule, a pure function of the review outcomes an entry collected since its mode last
changed: one step up after `[autonomy] min_drafts` reviewed drafts with at least `min_unedited` of them approved
unedited and no 👎, one step down at once on a correction (an edit or a rejection) or a 👎. `settle` folds a stream
of outcomes through the rule, one at a time, the way the desk applies it. The global `[routing] mode` stays the
ceiling (`ceiling`).

`Autonomy` keeps each entry's mode in the store (`autonomy_changes`: every change with its reason; the newest row is
the current mode): it reads an entry's evidence from the reviewed drafts whose top source is the entry and the 👎
on replies resting on it, applies the rule, lets an admin pin a mode, and turns an engine `Plan` into what the
entry's mode allows (`route`).
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from chatbot.config import AppConfig, AutonomyConfig
from chatbot.notices import handoff_notice, notice
from chatbot.plan import Plan

Mode = Literal["shadow", "draft", "auto"]
MODES: tuple[Mode, ...] = ("shadow", "draft", "auto")

Outcome = Literal["approved", "edited", "rejected", "thumbs_up", "thumbs_down"]
"""One piece of evidence about an entry: an agent approved its draft unedited, edited it, rejected it (wrote their
own reply), or the customer rated a reply from it."""
OUTCOMES: tuple[Outcome, ...] = ("approved", "edited", "rejected", "thumbs_up", "thumbs_down")
DRAFT_OUTCOMES = frozenset(("approved", "edited", "rejected"))
CORRECTIONS = frozenset(("edited", "rejected", "thumbs_down"))


def _check(outcomes: Sequence[str]) -> None:
    bad = sorted({o for o in outcomes if o not in OUTCOMES})
    if bad:
        raise ValueError(f"unknown review outcome(s) {bad}: use one of {list(OUTCOMES)}")


def evidence(outcomes: Sequence[Outcome]) -> dict[str, float | int]:
    """What the rule looks at: reviewed drafts, how many approved unedited, their share, corrections, 👎."""
    _check(outcomes)
    drafts = sum(o in DRAFT_OUTCOMES for o in outcomes)
    unedited = outcomes.count("approved")
    return {
        "drafts": drafts,
        "unedited": unedited,
        "unedited_share": unedited / drafts if drafts else 0.0,
        "corrections": sum(o in ("edited", "rejected") for o in outcomes),
        "thumbs_down": outcomes.count("thumbs_down"),
    }


def next_mode(current: Mode, outcomes: Sequence[Outcome], config: AutonomyConfig) -> Mode:
    """The entry's mode after `outcomes` (oldest first, all collected since it entered `current`).

    Any correction (an edit, a rejection) or 👎 demotes one step (`shadow` stays `shadow`: an agent already writes
    every reply). Otherwise `min_drafts` reviewed drafts, `min_unedited` of them approved unedited, promote one step.
    In `shadow` corrections do not demote, so there the share is what decides."""
    if current not in MODES:
        raise ValueError(f"unknown autonomy mode {current!r}: use one of {list(MODES)}")
    ev = evidence(outcomes)
    step = MODES.index(current)
    if ev["thumbs_down"] or (ev["corrections"] and current != "shadow"):
        return MODES[max(step - 1, 0)]
    if ev["drafts"] >= config.min_drafts and ev["unedited_share"] >= config.min_unedited:
        return MODES[min(step + 1, len(MODES) - 1)]
    return current


def settle(start: Mode, outcomes: Iterable[Outcome], config: AutonomyConfig) -> list[tuple[int, Mode]]:
    """Feed `outcomes` one at a time through `next_mode`, restarting the evidence at each change; the changes as
    (index of the outcome that caused it, new mode). The mode reached is the last one's, or `start`."""
    changes: list[tuple[int, Mode]] = []
    mode, since = start, []
    for i, outcome in enumerate(outcomes):
        since.append(outcome)
        new = next_mode(mode, since, config)
        if new != mode:
            changes.append((i, new))
            mode, since = new, []
    return changes


def ceiling(mode: Mode, routing_mode: str) -> Mode:
    """The entry's mode under the global `[routing] mode`: `draft_only` caps it at `draft`, `off` at `shadow`."""
    cap: Mode = {"auto": "auto", "draft_only": "draft", "off": "shadow"}[routing_mode]
    return MODES[min(MODES.index(mode), MODES.index(cap))]


_INSERT = ("INSERT INTO autonomy_changes (faq_id, mode, pinned, reason, actor, evidence, created_at) "
           "VALUES (?, ?, ?, ?, ?, ?, ?)")  # fmt: skip


def _like(text: str) -> str:
    """`text` as a literal inside a LIKE pattern (ESCAPE '\\')."""
    return "".join("\\" + ch if ch in "\\%_" else ch for ch in text)


@dataclass(frozen=True)
class Evidence:
    """One outcome about an entry, where it came from and when."""

    outcome: Outcome
    at: float
    what: str
    """e.g. "draft #12 edited by ann", "👎 on message #40"."""


@dataclass(frozen=True)
class Change:
    """One row of an entry's history."""

    faq_id: str
    mode: Mode
    pinned: bool
    reason: str
    actor: str | None
    evidence: dict[str, Any]
    at: float


class Autonomy:
    """Each FAQ entry's mode over a `chatbot.store.Store` and the app config (`[autonomy]`, `[routing] mode`)."""

    def __init__(self, store: Any, config: AppConfig):
        self.store = store
        self.config = config

    # -- reading --------------------------------------------------------------------------------------------------
    def history(self, faq_id: str) -> list[Change]:
        """The entry's changes, oldest first (empty: it is in `[autonomy] initial` and was never changed)."""
        rows = self.store._read("SELECT * FROM autonomy_changes WHERE faq_id = ? ORDER BY id", (faq_id,))
        return [Change(r["faq_id"], r["mode"], bool(r["pinned"]), r["reason"], r["actor"], json.loads(r["evidence"]),
                       r["created_at"]) for r in rows]  # fmt: skip

    def _last(self, faq_id: str) -> Change | None:
        rows = self.store._read("SELECT * FROM autonomy_changes WHERE faq_id = ? ORDER BY id DESC LIMIT 1", (faq_id,))
        if not rows:
            return None
        r = rows[0]
        return Change(r["faq_id"], r["mode"], bool(r["pinned"]), r["reason"], r["actor"], json.loads(r["evidence"]),
                      r["created_at"])  # fmt: skip

    def evidence_since(self, faq_id: str, since: float = 0.0) -> list[Evidence]:
        """Reviews of drafts whose top source is `faq_id` and 👎/👍 on messages resting first on it, after `since`,
        oldest first."""
        out: list[Evidence] = []
        drafts = self.store._read(
            "SELECT id, state, agent, reviewed_at, sources FROM drafts WHERE state IN ('approved', 'edited', "
            "'rejected') AND reviewed_at > ? AND sources LIKE ? ESCAPE '\\'",
            (since, "%" + _like('"faq_id": ' + json.dumps(faq_id)) + "%"),
        )
        for r in drafts:
            sources = json.loads(r["sources"])
            if sources and sources[0].get("faq_id") == faq_id:
                out.append(Evidence(r["state"], r["reviewed_at"], f"draft #{r['id']} {r['state']} by {r['agent']}"))
        thumbs = self.store._read(
            "SELECT f.up, f.created_at, f.message_id, m.faq_ids FROM feedback f JOIN messages m ON m.id = f.message_id "
            "WHERE f.created_at > ? AND m.faq_ids LIKE ? ESCAPE '\\'",
            (since, _like("[" + json.dumps(faq_id)) + "%"),
        )
        for r in thumbs:
            ids = json.loads(r["faq_ids"])
            if ids and ids[0] == faq_id:
                up = bool(r["up"])
                out.append(Evidence("thumbs_up" if up else "thumbs_down", r["created_at"],
                                    f"{'👍' if up else '👎'} on message #{r['message_id']}"))  # fmt: skip
        return sorted(out, key=lambda e: e.at)

    # -- deciding -------------------------------------------------------------------------------------------------
    def refresh(self, faq_id: str) -> Mode:
        """Apply the rule to the entry's evidence since its last change, recording each change it makes (dated at the
        outcome that caused it); a pinned entry stays. Returns the entry's mode (before the ceiling)."""
        cfg = self.config.autonomy
        last = self._last(faq_id)
        mode: Mode = last.mode if last else cfg.initial
        if last is not None and last.pinned:
            return mode
        since: list[Outcome] = []
        changes = []
        for item in self.evidence_since(faq_id, last.at if last else 0.0):
            since.append(item.outcome)
            new = next_mode(mode, since, cfg)
            if new != mode:
                ev = evidence(since)
                if MODES.index(new) > MODES.index(mode):
                    why = (f"promoted: {ev['unedited']} of {ev['drafts']} reviewed drafts approved unedited "
                           f"(>= {cfg.min_drafts} drafts, >= {cfg.min_unedited:.0%} unedited), no 👎")  # fmt: skip
                else:
                    why = f"demoted at once: {item.what}"
                changes.append((faq_id, new, 0, why, None, json.dumps(ev), item.at))
                mode, since = new, []
        if changes:
            with self.store.transaction() as db:
                for row in changes:
                    db.execute(_INSERT, row)
        return mode

    def mode(self, faq_id: str) -> Mode:
        """The mode the engine uses for replies resting first on `faq_id`: the entry's own, under `[routing] mode`."""
        return ceiling(self.refresh(faq_id), self.config.routing.mode)

    def pin(self, faq_id: str, mode: Mode | None, admin: str) -> None:
        """Pin the entry at `mode` (the rule leaves it there), or unpin it (`None`: the rule applies again from its
        current mode, with fresh evidence)."""
        if mode is not None and mode not in MODES:
            raise ValueError(f"unknown autonomy mode {mode!r}: use one of {list(MODES)}")
        if not faq_id.strip():
            raise ValueError("name the FAQ entry (its id) to pin")
        current = self._last(faq_id)
        keep: Mode = current.mode if current else self.config.autonomy.initial
        reason = f"pinned at {mode} by {admin}" if mode else f"unpinned by {admin}: the rule applies again"
        with self.store.transaction() as db:
            db.execute(_INSERT, (faq_id, mode or keep, int(mode is not None), reason, admin, "{}", time.time()))

    def known_entries(self) -> list[str]:
        """Entries the store knows: the top source of any reply or draft, and any entry with a history, sorted.
        (Others have no evidence yet and are in `[autonomy] initial`.)"""
        ids = {r["faq_id"] for r in self.store._read("SELECT DISTINCT faq_id FROM autonomy_changes")}
        for r in self.store._read("SELECT DISTINCT faq_ids FROM messages WHERE faq_ids <> '[]'"):
            ids.add(json.loads(r["faq_ids"])[0])
        for r in self.store._read("SELECT DISTINCT sources FROM drafts WHERE sources <> '[]'"):
            top = json.loads(r["sources"])[0].get("faq_id")
            if top:
                ids.add(top)
        return sorted(ids)

    def overview(self, faq_ids: Iterable[str]) -> list[dict[str, Any]]:
        """Each entry's `faq_id`, `mode` (its own), `effective` (under the ceiling), `pinned`, `evidence` since its
        last change and `history` (each change's `mode`, `pinned`, `reason`, `actor`, `at`), for the admin page and
        `chatbot report --json`."""
        out = []
        for faq_id in faq_ids:
            mode = self.refresh(faq_id)
            last = self._last(faq_id)
            items = self.evidence_since(faq_id, last.at if last else 0.0)
            out.append({
                "faq_id": faq_id, "mode": mode, "effective": ceiling(mode, self.config.routing.mode),
                "pinned": bool(last and last.pinned), "evidence": evidence([e.outcome for e in items]),
                "history": [{"mode": c.mode, "pinned": c.pinned, "reason": c.reason, "actor": c.actor, "at": c.at}
                            for c in self.history(faq_id)],
            })  # fmt: skip
        return out

    # -- the engine's and the desk's hooks ------------------------------------------------------------------------
    def route(self, plan: Plan) -> Plan:
        """`plan` as its top source's mode allows: an `answer` becomes a `draft` in `draft` mode; an answer or draft
        becomes a handoff with the bot's text kept as the agent's suggestion in `shadow` mode. Other plans (notices,
        handoffs, a person handling the chat) and a disabled `[autonomy]` are left alone."""
        if not self.config.autonomy.enabled or plan.action not in ("generate", "verbatim") or not plan.hits:
            return plan
        if plan.route == "handoff":
            return plan
        faq_id = plan.hits[0].entry.id
        mode = self.mode(faq_id)
        if mode == "shadow":
            return dataclasses.replace(
                plan, route="handoff", shown_first=handoff_notice(plan.language, self.config.desk.hours),
                reason=f"FAQ entry {faq_id} is in shadow mode: an agent writes the reply, the bot's draft is their "
                f"suggestion ({plan.reason})",
            )  # fmt: skip
        if mode == "draft" and plan.route == "answer":
            return dataclasses.replace(
                plan, route="draft", shown_first=notice("hold", plan.language),
                reason=f"FAQ entry {faq_id} is in draft mode: an agent approves the reply ({plan.reason})",
            )  # fmt: skip
        return plan

    def reviewed(self, draft: Any) -> None:
        """A draft was approved, edited or rejected: apply the rule to its top source now."""
        if draft.sources and draft.sources[0].get("faq_id"):
            self.refresh(draft.sources[0]["faq_id"])

    def close_suggestions(self, conversation_id: str, agent: str) -> list[int]:
        """The agent wrote their own reply: the conversation's pending shadow-mode suggestions (drafts whose notice
        handed the chat off) count as rejected. Returns their ids."""
        rows = self.store._read(
            "SELECT DISTINCT d.id FROM drafts d JOIN messages m ON m.draft_id = d.id AND m.role = 'bot' "
            "WHERE d.conversation_id = ? AND d.state = 'pending' AND m.route = 'handoff' ORDER BY d.id",
            (conversation_id,),
        )
        ids = [int(r["id"]) for r in rows]
        for draft_id in ids:
            self.store.reject_draft(draft_id, agent, "the agent wrote their own reply (shadow mode suggestion)")
            self.reviewed(self.store.draft(draft_id))
        return ids

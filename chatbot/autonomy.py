"""Autonomy per FAQ entry: how far the bot may answer on its own when an entry is its top source.

- `shadow`: the bot drafts, an agent writes the reply; the draft is shown to the agent as a suggestion only.
- `draft`: an agent approves (or edits, or rejects) the bot's draft before the customer sees it.
- `auto`: the bot sends.

`next_mode` is the promotion rule, a pure function of the review outcomes an entry collected since its mode last
changed: one step up after `[autonomy] min_drafts` reviewed drafts with at least `min_unedited` of them approved
unedited and no 👎, one step down at once on a correction (an edit or a rejection) or a 👎. `settle` folds a stream
of outcomes through the rule, one at a time, the way the desk applies it. The global `[routing] mode` stays the
ceiling (`ceiling`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Literal

from chatbot.config import AutonomyConfig

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

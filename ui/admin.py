"""The admin page at `/admin` (login, admin role): FAQ upload with a validation report and an explicit change list
(merge or replace, removals confirmed), versions with activation and rollback, usage figures and plots, and the
model (the base model and the LoRA adapters, with what their figures mean)."""

# No `from __future__ import annotations`: Gradio reads the `gr.Request` hints of the handlers at runtime.
import contextlib
import difflib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from chatbot.settings import chatbot_home
from ui.render import as_text

MAX_FAQ_BYTES = 5 * 1024 * 1024
"""Largest FAQ file the admin page accepts (Gradio refuses bigger uploads before they reach a handler)."""
SHOWN_ENTRIES = 50
"""Entries listed per kind of change (the counts are always complete)."""
BASE_MODEL = "none"
"""The registry's name for the base model without an adapter."""

Mode = Literal["merge", "replace"]
MODES: dict[str, str] = {
    "merge": "Merge: add the new entries and update the changed ones; entries the file lacks stay",
    "replace": "Replace: the FAQ becomes exactly this file; entries it lacks are removed",
}

FIGURES_EXPLAINED = """**What the figures mean**

- *Validation perplexity*: how well the model predicts your agents' own replies in support conversations kept out
  of its training. Think of it as the number of words the model hesitates between at each step: 1 would be
  certain, lower is better. Compare it only between adapters of the same base model measured on the same
  conversations.
- *Held-out perplexity, base → adapter* and *ROUGE-L* (from `chatbot eval-dialogue --compare`, when the adapter
  folder has its `eval_heldout.json`): the same perplexity on other held-out conversations for the base model and
  for the adapter, and ROUGE-L, how much of the agent's real reply the generated reply matches word for word in
  order (0 to 1, higher is better).
- These figures say how much the model *writes like your agents*, not whether it answers right. That is what the
  answer check measures when you activate a model or an FAQ version: both answer the `[eval]` files through this
  engine, and the table compares them (explained under the table)."""

GATE_METRICS: dict[str, str] = {
    "answered_accuracy": "of the in-scope questions the bot answered itself, the share answered from a right FAQ "
    "entry (higher is better)",
    "first_turn_accuracy": "the share of first messages answered or drafted from a right entry, not handed off "
    "(higher is better)",
    "followup_accuracy": "the same for the last message of each multi-turn conversation (higher is better)",
    "unsupported_share": "the share of answers and drafts stating something their sources do not say (lower is better)",
    "fallback_share": "the share of generated replies that failed the claim check and were replaced by the sources' "
    "own words (lower is better)",
    "answered_share": "the share of in-scope questions answered without an agent (shown, not checked)",
    "oos_answered": "the share of questions the FAQ cannot answer that were answered anyway (shown, not checked; "
    "lower is better)",
    "composed_share": "the share of answers the model wrote rather than a source's whole answer (shown, not checked)",
    "latency_s_p50": "median seconds per reply on this machine (shown, not checked)",
}
"""Plain words for the rows of the answer check's table (`chatbot.gate`)."""


def require_admin(store: Any, request: Any) -> str:
    """The logged-in admin's name; refuses anyone else (the page's middleware already does, this is the handler's
    own check)."""
    import gradio as gr

    name = getattr(request, "username", None) if request is not None else None
    users = {u.name: u for u in store.users()} if name else {}
    if not name or name not in users or users[name].role != "admin":
        raise gr.Error("only admins may do this", title="Not allowed")
    return name


def _code(value: str) -> str:
    return f"`{value}`" if "`" not in value else as_text(value)


def _short(text: str, limit: int = 240) -> str:
    flat = " ".join(text.split())
    return as_text(flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…")


def word_change(old: str, new: str, context: int = 8) -> str:
    """`old` -> `new` word by word as Markdown: removed words ~~struck~~, added ones **bold**, long unchanged
    stretches cut to `context` words either side of a change."""
    a, b = old.split(), new.split()
    opcodes = difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes()
    out = []
    for n, (op, i1, i2, j1, j2) in enumerate(opcodes):
        if op == "equal":
            words = a[i1:i2]
            head = words[:context] if n > 0 else []
            tail = words[-context:] if n < len(opcodes) - 1 else []
            if len(head) + len(tail) >= len(words):
                out.append(as_text(" ".join(words)))
            else:
                out.append(" ".join(p for p in (as_text(" ".join(head)), "…", as_text(" ".join(tail))) if p))
            continue
        if i2 > i1:
            out.append(f"~~{as_text(' '.join(a[i1:i2]))}~~")
        if j2 > j1:
            out.append(f"**{as_text(' '.join(b[j1:j2]))}**")
    return " ".join(out) if any(op != "equal" for op, *_ in opcodes) else "only spacing changed"


def gate_legend(markdown_table: str) -> str:
    """What each row of an answer-check table means (only the rows it has)."""
    rows = [f"- *{name}*: {words}" for name, words in GATE_METRICS.items() if f" {name} |" in markdown_table]
    if not rows:
        return ""
    intro = ("**Reading the table**: *active* is what answers now, *candidate* the one being activated, *change* "
             "candidate − active; ❌ marks a checked figure worse than `[eval]` allows.")  # fmt: skip
    return intro + "\n\n" + "\n".join(rows)


def adapter_label(name: str | None) -> str:
    """One name per model everywhere on the page: the registry's (`shipped` for the adapter shipped with the app)."""
    if not name or name == BASE_MODEL:
        return "the base model (no adapter)"
    return f"{_code(name)} (shipped with the app)" if name == "shipped" else _code(name)


def removal_label(n: int) -> str:
    """The confirmation checkbox's label for removing `n` entries."""
    return f"Yes, remove these {n} entries"


@dataclass(frozen=True)
class FaqUpdate:
    """What building an uploaded FAQ file changes, in one mode, against the version in use."""

    path: str
    mode: Mode
    base_version: str | None
    """The version the changes are counted against (None: no version yet)."""
    entries: tuple
    """The new version's `FaqEntry`s."""
    added: tuple
    changed: tuple
    """`(current, incoming)` pairs of `FaqEntry`s."""
    removed: tuple
    kept: int
    """Entries of the version in use the file lacks, kept (merge mode)."""
    in_file: int
    """Entries in the file."""

    @property
    def empty(self) -> bool:
        return not (self.added or self.changed or self.removed)

    def checked(self) -> dict[str, Any]:
        """What the page keeps between the check and the build (a `gr.State`: plain data)."""
        return {"path": self.path, "mode": self.mode, "version": self.base_version,
                "removed": [e.id for e in self.removed]}  # fmt: skip


class AdminPage:
    """The admin handlers (the Gradio wiring is in `build`)."""

    def __init__(self, engine: Any, uploads: str | Path | None = None):
        self.engine = engine
        self.uploads = Path(uploads).resolve() if uploads is not None else None
        """Gradio's upload folder: `check_upload` reads files only from there (None: any path, for direct calls)."""
        self._learned: tuple[Any, list[Any]] | None = None  # (what it was worked out from, the learned phrasings)

    @property
    def kb(self) -> Any:
        return self.engine.kb

    # -- FAQ ----------------------------------------------------------------------------------------------------
    def check_upload(self, path: str | None, mode: Mode = "merge") -> tuple[str, str, dict[str, Any] | None]:
        """Validate an uploaded FAQ file: `(report, changes, checked)`, where `changes` lists what building it in
        `mode` adds, changes and removes, with the entries' text, and `checked` is what `build_faq` needs (None when
        the file cannot be built). Nothing changes yet."""
        from knowledge_base.loaders import validate_faq

        if not path:
            return "Upload a `.jsonl`, `.csv` or `.md` FAQ file.", "", None
        file = Path(path)
        if self.uploads is not None and not file.resolve().is_relative_to(self.uploads):
            return "❌ Only files uploaded on this page can be checked; upload the FAQ file again.", "", None
        size = file.stat().st_size if file.exists() else 0
        if size > MAX_FAQ_BYTES:
            return (f"❌ **{as_text(file.name)}** is {size / 1e6:.1f} MB; the limit is {MAX_FAQ_BYTES / 1e6:.0f} MB. "
                    "Split the FAQ or remove unused entries. The FAQ in use is unchanged."), "", None  # fmt: skip
        problems = validate_faq(file)
        if problems:
            rows = ["| line | problem |", "|---:|---|"]
            rows += [f"| {p.line or '—'} | {as_text(p.message)} |" for p in problems]
            report = (
                f"❌ **{as_text(file.name)}: {len(problems)} problem(s).** Fix them and upload again; the FAQ in "
                f"use (version {as_text(str(self.kb.current_version))}) keeps answering.\n\n" + "\n".join(rows)
            )
            return report, "", None
        update = self.plan_update(file, mode)
        report = f"✅ **{as_text(file.name)}** is valid: {update.in_file} entries."
        return report, self.changes_markdown(update), update.checked()

    def preview(self, checked: dict[str, Any] | None, mode: Mode) -> tuple[str, dict[str, Any] | None]:
        """The change list of the checked file in another `mode`, and the new `checked` record."""
        if not checked:
            return "", None
        update = self.plan_update(checked["path"], mode)
        return self.changes_markdown(update), update.checked()

    def plan_update(self, path: str | Path, mode: Mode) -> FaqUpdate:
        """What building the (valid) file `path` in `mode` changes against the version in use."""
        from knowledge_base.kb import NoSnapshotError, merge_entries, same_content
        from knowledge_base.loaders import load_faq

        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        incoming = load_faq(path)
        # another worker or the CLI may have made a version current a moment ago: compare with that one (one that
        # cannot be loaded here leaves the served one, and the knowledge-base watcher logs why)
        with contextlib.suppress(Exception):
            self.kb.reload()
        try:
            current, base = self.kb.entries(), self.kb.current_version
        except NoSnapshotError:
            current, base = [], None
        old = {e.id: e for e in current}
        names = {e.id for e in incoming}
        added = tuple(e for e in incoming if e.id not in old)
        changed = tuple((old[e.id], e) for e in incoming if e.id in old and not same_content(old[e.id], e))
        lacking = tuple(e for e in current if e.id not in names)
        if mode == "merge":
            return FaqUpdate(str(path), mode, base, tuple(merge_entries(current, incoming)), added, changed, (),
                             len(lacking), len(incoming))  # fmt: skip
        return FaqUpdate(str(path), mode, base, tuple(incoming), added, changed, lacking, 0, len(incoming))

    def changes_markdown(self, update: FaqUpdate) -> str:
        """The change list shown before a build: counts, then each entry's question and text."""
        against = f"version {as_text(update.base_version)}" if update.base_version else "an empty FAQ"
        if update.empty:
            kept = f" ({update.kept} entries the file lacks stay)" if update.kept else ""
            return f"No change against {against}{kept}: building it would change nothing."
        counts = (f"**{len(update.added)} added · {len(update.changed)} changed · {len(update.removed)} removed** "
                  f"against {against} ({update.mode}; the new version has {len(update.entries)} entries)")  # fmt: skip
        unchanged = update.in_file - len(update.added) - len(update.changed)
        if unchanged:
            counts += f"; {unchanged} entries of the file are unchanged"
        if update.kept:
            counts += f"; the {update.kept} entries the file lacks stay as they are"
        parts = [counts]

        def listed(title: str, items: tuple, line: Any) -> None:
            if not items:
                return
            rows = [line(item) for item in items[:SHOWN_ENTRIES]]
            more = [f"- … and {len(items) - SHOWN_ENTRIES} more"] if len(items) > SHOWN_ENTRIES else []
            parts.append(f"#### {title} ({len(items)})\n\n" + "\n".join(rows + more))

        def entry(e: Any) -> str:
            return f"- **{_short(e.question, 160)}** ({_code(e.id)}): {_short(e.answer)}"

        def change(pair: tuple) -> str:
            old, new = pair
            lines = [f"- **{_short(new.question, 160)}** ({_code(new.id)})"]
            if old.question != new.question:
                lines.append(f"  - question: {word_change(old.question, new.question)}")
            if old.answer != new.answer:
                lines.append(f"  - answer: {word_change(old.answer, new.answer)}")
            gone = [q for q in old.alt_questions if q not in new.alt_questions]
            extra = [q for q in new.alt_questions if q not in old.alt_questions]
            if gone or extra:
                said = [f"**+ {_short(q, 100)}**" for q in extra] + [f"~~{_short(q, 100)}~~" for q in gone]
                lines.append("  - other phrasings: " + "; ".join(said))
            if old.category != new.category:
                lines.append(f"  - category: {as_text(str(old.category or '—'))} → {as_text(str(new.category or '—'))}")
            if new.language and old.language != new.language:
                lines.append(f"  - language: {as_text(str(old.language or '—'))} → {as_text(new.language)}")
            return "\n".join(lines)

        listed("Added", update.added, entry)
        listed("Changed", update.changed, change)
        listed("Removed", update.removed, entry)
        if update.removed:
            parts.append(f"⚠️ **Building this removes {len(update.removed)} entries** (listed above) from the FAQ: "
                         f"tick *{removal_label(len(update.removed))}* to confirm, or choose *Merge* to keep "
                         "them.")  # fmt: skip
        return "\n\n".join(parts)

    def build_faq(self, checked: dict[str, Any] | None, mode: Mode | None = None, *, confirm_removal: bool = False,
                  force: bool = False, progress: Any = None) -> str:  # fmt: skip
        """Build the checked file (as `check_upload` or `preview` showed it, in `mode`) into a new version and make it
        current through the answer-quality gate (refused when it answers the `[eval]` files worse than the current
        version, unless `force`); searches keep running meanwhile, and a refused version stays on disk.

        Refused before anything is built when the FAQ in use changed since the check, when `mode` is not the one
        whose changes were shown, and when entries would be removed without `confirm_removal`."""
        if not checked:
            return "Upload and check a valid FAQ file first."
        mode = mode or checked["mode"]
        if mode != checked["mode"]:
            return f"❌ Not built: the changes shown are for *{checked['mode']}*; look at them for *{mode}* first."
        try:
            update = self.plan_update(checked["path"], mode)
        except Exception as exc:  # noqa: BLE001 - e.g. the uploaded copy expired from Gradio's cache
            return f"❌ Not built: {as_text(str(exc))}. Upload the file again."
        if update.base_version != checked["version"] or [e.id for e in update.removed] != checked["removed"]:
            now = as_text(str(update.base_version))
            return (f"❌ Not built: the FAQ in use changed since the check (version "
                    f"{as_text(str(checked['version']))}, now {now}). Upload the file again to see what building it "
                    "changes now.")  # fmt: skip
        if update.removed and not confirm_removal:
            return (f"❌ Not built: this removes {len(update.removed)} entries. Tick "
                    f"*{removal_label(len(update.removed))}* to confirm, or choose *Merge* to keep them.")  # fmt: skip
        if update.empty:
            return f"Nothing to build: the file changes nothing in version {as_text(str(update.base_version))}."
        if progress is not None:
            progress(0.05, desc="building the index")
        source = update.path if mode == "replace" else f"{update.path} (merged into {update.base_version})"
        try:
            info = self.kb.build_entries(list(update.entries), source=source, progress=progress is not None,
                                         activate=False)  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - the old version keeps answering; say why
            current = as_text(str(self.kb.current_version))
            return f"❌ Build failed, version {current} still answers: {as_text(str(exc))}"
        if progress is not None:
            progress(0.5, desc="comparing answers with the current version")
        status = self._through_gate(info.version, force, "is live with {entries} entries", progress is not None)
        if progress is not None:
            progress(1.0, desc="done")
        return status

    def _through_gate(self, version: str, force: bool, live: str, progress: bool = False) -> str:
        """Make `version` current through the gate; the status line, with the comparison table when it ran."""
        from chatbot.gate import GateRefusedError, activate_version

        current = as_text(str(self.kb.current_version))
        try:
            info, result = activate_version(self.kb, version, self.engine.config, force=force,
                                            backend=self.engine.backend, progress=progress)  # fmt: skip
        except GateRefusedError as exc:
            reasons = "\n".join(f"- {as_text(r)}" for r in exc.result.reasons)
            return (f"❌ Version **{as_text(version)}** answers worse than version {current} on the evaluation "
                    f"files, so {current} still answers; {as_text(version)} is kept (tick *force* to make it "
                    f"current anyway).\n\n{reasons}\n\n{_explained(exc.result)}")  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - the current version keeps answering; say why
            return f"❌ {as_text(str(exc))}"
        return f"✅ Version **{as_text(info.version)}** {live.format(entries=info.entries)}.\n\n{_explained(result)}"

    def versions_table(self) -> list[list[Any]]:
        """Versions, newest first: version, created, entries, current, source file."""
        return [[v.version, v.created, v.entries, "✅" if v.current else "", Path(v.source).name if v.source else ""]
                for v in reversed(self.kb.versions())]  # fmt: skip

    def version_choices(self) -> list[str]:
        return [v.version for v in reversed(self.kb.versions())]

    def activate_version(self, version: str | None, force: bool = False) -> str:
        """Make `version` current (activate a newer one or roll back to an older one) through the answer-quality
        gate, unless `force`."""
        if not version:
            return "Choose a version."
        return self._through_gate(version, force, "is live ({entries} entries)")

    # -- figures ------------------------------------------------------------------------------------------------
    def answer_languages(self) -> set[str]:
        """Languages the bot answers in: the model's, and those of the FAQ entries it can send as written."""
        from knowledge_base.kb import NoSnapshotError

        try:
            faq = {e.language for e in self.kb.entries() if e.language}
        except NoSnapshotError:
            faq = set()
        return set(self.engine.config.language.model_languages) | faq

    def figures(self, days: int = 30) -> tuple[str, Any, Any, list[list[Any]]]:
        """Summary text, a per-day plot, a route-share plot, and the top questions that found no good source (not
        requests for a person, not messages in a language the bot does not answer in: those are counted apart)."""
        from chatbot.routing import asks_for_human

        phrases = self.engine.config.routing.human_phrases
        stats = self.engine.store.stats(days=days, asks_for_person=lambda text: asks_for_human(text, phrases),
                                        languages=self.answer_languages())  # fmt: skip
        share = stats["route_share"]
        routes = stats["routes"]
        approval = "—" if stats["approval_rate"] is None else f"{stats['approval_rate']:.0%}"
        edit = "—" if stats["edit_rate"] is None else f"{stats['edit_rate']:.0%}"
        conversations = sum(d["conversations"] for d in stats["per_day"])
        messages = sum(d["messages"] for d in stats["per_day"])
        other = ", ".join(f"{as_text(r['language'])}: {r['n']}" for r in stats["unsupported_languages"]) or "none"
        summary = (
            f"Last {days} days: **{conversations}** conversations and **{messages}** messages (summed per day).\n\n"
            f"| answered | drafted | handed off | drafts approved | of which edited | 👍 | 👎 |\n"
            f"|---:|---:|---:|---:|---:|---:|---:|\n"
            f"| {share['answer']:.0%} ({routes['answer']}) | {share['draft']:.0%} ({routes['draft']}) "
            f"| {share['handoff']:.0%} ({routes['handoff']}) | {approval} | {edit} "
            f"| {stats['thumbs_up']} | {stats['thumbs_down']} |\n\n"
            f"Drafts: {stats['drafts']['pending']} pending, {stats['drafts']['approved']} approved, "
            f"{stats['drafts']['edited']} edited, {stats['drafts']['rejected']} rejected.\n\n"
            f"Handed off but not counted below as questions the FAQ does not answer: requests for a person: "
            f"**{stats['person_requests']}**; messages in languages the bot does not answer in: {other}.\n\n"
            f"Generated replies that failed the claim check and were replaced by the sources' own words: "
            f"**{stats['rejected']}**" + "".join(f"\n- {r['n']} × {r['reason']}" for r in stats["rejection_reasons"])
        )
        unanswered = [[r["question"], r["n"]] for r in stats["top_unanswered"]]  # Dataframe cells are plain text
        return summary, per_day_plot(stats["per_day"]), routes_plot(stats["routes"]), unanswered

    # -- resolution, autonomy, gaps -------------------------------------------------------------------------------
    def resolution(self, days: int = 30) -> tuple[str, Any, Any, list[list[Any]]]:
        """The resolution figures (`chatbot.resolution`): a table of each figure's value with its definition, a plot
        of the shares per day, a plot of handoffs per day by reason, and a row per FAQ entry."""
        from chatbot.resolution import Resolution

        figures = Resolution(self.engine.store, self.engine.config, days=days).figures()
        rows = ["| figure | value | counted | definition |", "|---|---:|---:|---|"]
        for name, f in figures.items():
            rows.append(f"| {name} | {_figure_value(name, f['value'])} | {f['n']} | {as_text(f['definition'])} |")
        reasons = figures["handoffs"]["counts"]
        rows.append("")
        rows.append("Handoffs by reason: " + ", ".join(f"{k} {v}" for k, v in reasons.items() if k != "handoffs"))
        entries: dict[str, dict[str, Any]] = {}
        for name in ("contained", "confirmed", "durable", "acceptance", "edit_distance"):
            for e in figures[name]["per_entry"]:
                entries.setdefault(e["faq_id"], {})[name] = e["value"]
        table = [[faq_id, *(_figure_value(n, v.get(n)) for n in ("contained", "confirmed", "durable", "acceptance",
                                                                   "edit_distance"))]
                 for faq_id, v in sorted(entries.items())]  # fmt: skip
        summary = f"Last {days} days.\n\n" + "\n".join(rows)
        return summary, resolution_plot(figures), handoff_plot(figures["handoffs"]), table

    def autonomy_entries(self) -> list[str]:
        """The FAQ's entries and any other entry the store knows (an older version's), sorted."""
        from knowledge_base.kb import NoSnapshotError

        try:
            current = {e.id for e in self.kb.entries()}
        except NoSnapshotError:
            current = set()
        return sorted(current | set(self.engine.autonomy.known_entries()))

    def autonomy_rows(self) -> list[list[Any]]:
        """Each entry's mode (its own and under `[routing] mode`), whether pinned, the evidence since its last change
        and that change's reason."""
        rows = []
        for e in self.engine.autonomy.overview(self.autonomy_entries()):
            ev = e["evidence"]
            last = e["history"][-1]["reason"] if e["history"] else "new entry: [autonomy] initial"
            rows.append([e["faq_id"], e["mode"], e["effective"], "📌" if e["pinned"] else "", ev["drafts"],
                         f"{ev['unedited_share']:.0%}" if ev["drafts"] else "—", ev["corrections"], ev["thumbs_down"],
                         last])  # fmt: skip
        return rows

    def autonomy_history(self, faq_id: str | None) -> list[list[Any]]:
        """One entry's changes, newest first: when, mode, pinned, reason, by whom."""
        if not faq_id:
            return []
        return [[_when(c.at), c.mode, "📌" if c.pinned else "", c.reason, c.actor or "the rule"]
                for c in reversed(self.engine.autonomy.history(faq_id))]  # fmt: skip

    def pin_mode(self, faq_id: str | None, mode: str | None, admin: str) -> str:
        """Pin an entry's mode (`shadow`, `draft`, `auto`) or unpin it (`unpin`)."""
        if not faq_id:
            return "Choose an FAQ entry."
        if mode not in (*AUTONOMY_MODES, "unpin"):
            return f"❌ Choose a mode: {', '.join(AUTONOMY_MODES)} or unpin."
        self.engine.autonomy.pin(faq_id, None if mode == "unpin" else mode, admin)
        if mode == "unpin":
            return f"✅ {_code(faq_id)} is unpinned: reviews promote and demote it again."
        return f"✅ {_code(faq_id)} is pinned at **{mode}** until unpinned."

    def gap_suggestions(self, days: int = 30) -> list[Any]:
        """New FAQ entries to offer (`chatbot.gaps`): agent-answered questions that had no good source and that the
        FAQ in use still does not answer, grouped by meaning."""
        from chatbot.gaps import answered_gaps, suggest
        from chatbot.phrasings import source_of
        from chatbot.routing import asks_for_human

        cfg = self.engine.config
        questions = answered_gaps(self.engine.store, days, languages=self.answer_languages(),
                                  asks_for_person=lambda t: asks_for_human(t, cfg.routing.human_phrases))  # fmt: skip
        if self.kb.current_version is not None:
            questions = [q for q in questions if not self._answered_now(q.question)]
            if cfg.learning.enabled:  # an answer drawn from an entry teaches a learned phrasing of it instead
                entries = self.kb.entries()
                questions = [q for q in questions if source_of(q.answer, (q.question,), q.language, entries,
                                                               cfg.learning).faq_id is None]  # fmt: skip
        return suggest(questions, self.kb.embedder.encode, cfg.gaps)

    def _answered_now(self, question: str) -> bool:
        hits = self.kb.search(question, k=1).hits
        return bool(hits) and hits[0].score >= self.engine.config.kb.draft_threshold

    def gaps_table(self, suggestions: list[Any]) -> list[list[Any]]:
        """Suggestions as rows: question, answer, other phrasings, conversations."""
        return [[s.question, s.answer, "\n".join(s.alt_questions), len(s.conversations)] for s in suggestions]

    def add_gap(self, question: str | None, days: int = 30, force: bool = False) -> str:
        """Add the suggestion whose question is `question` as a new FAQ entry in one action: written as an FAQ file,
        validated, merged into the FAQ in use and made current through the answer-quality gate (`build_faq`)."""
        from knowledge_base.loaders import validate_faq

        if not question:
            return "Choose a suggestion."
        chosen = next((s for s in self.gap_suggestions(days) if s.question == question), None)
        if chosen is None:
            return (f"❌ No suggestion asks {as_text(question)!r} any more (added already, or the FAQ now answers "
                    "it): refresh the suggestions.")  # fmt: skip
        entry = chosen.entry(taken=set(self.autonomy_entries()))
        folder = chatbot_home() / "gaps"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{entry.id}.jsonl"
        path.write_text(json.dumps(entry.to_dict(), ensure_ascii=False) + "\n", encoding="utf-8")
        problems = validate_faq(path)
        if problems:
            return "❌ Not added: " + "; ".join(as_text(p.message) for p in problems)
        update = self.plan_update(path, "merge")
        return self.build_faq(update.checked(), "merge", force=force)

    # -- learned phrasings ----------------------------------------------------------------------------------------
    def _dropped(self) -> Any:
        from chatbot.phrasings import DroppedPhrasings

        return DroppedPhrasings(chatbot_home() / "learning" / "dropped.jsonl")

    def learned_phrasings(self) -> list[Any]:
        """Customers' questions that agents answered from an FAQ entry, not yet phrasings of it (`chatbot.phrasings`):
        each one is kept (added to the entry) or dropped by the admin; none when `[learning] enabled` is off. The
        list is worked out again only when agents have sent a reply, the FAQ version changed or a phrasing was
        dropped since (reading every reviewed reply is the costly part; keep and drop look their item up here)."""
        from chatbot.phrasings import learn, reviewed_replies

        cfg = self.engine.config.learning
        if not cfg.enabled or self.kb.current_version is None:
            return []
        dropped = self._dropped()
        stat = dropped.path.stat() if dropped.path.exists() else None
        key = (self.kb.current_version, self.engine.store.agent_replies_mark(),
               stat and (stat.st_mtime_ns, stat.st_size), cfg)  # fmt: skip
        cached = self._learned
        if cached is None or cached[0] != key:
            cached = (key, learn(reviewed_replies(self.engine.store), self.kb.entries(), cfg, dropped.load()))
            self._learned = cached
        return list(cached[1])

    @staticmethod
    def phrasing_label(item: Any) -> str:
        return f"{item.faq_id}: {item.phrasing}"

    def phrasings_table(self, learned: list[Any]) -> list[list[Any]]:
        """Learned phrasings as rows: entry, phrasing, support, conversations, entries the drafts had used."""
        return [[item.faq_id, item.phrasing, item.support, len(item.conversations), ", ".join(item.drafted_from)]
                for item in learned]  # fmt: skip

    def refresh_phrasings(self) -> tuple[list[Any], str]:
        """The learned phrasings to show and a status line; with `[learning] apply = "auto"` they are kept at once
        (one build for all of them) and the status says what that did."""
        learned = self.learned_phrasings()
        if learned and self.engine.config.learning.apply == "auto":
            status = self.keep_phrasings(learned)
            return self.learned_phrasings(), status
        return learned, ""

    def keep_phrasing(self, label: str | None, force: bool = False) -> str:
        """Add the learned phrasing `label` (`phrasing_label`) to its FAQ entry in one action: the entry is written
        as an FAQ file, validated, merged into the FAQ in use and made current through the answer-quality gate."""
        if not label:
            return "Choose a learned phrasing."
        chosen = [item for item in self.learned_phrasings() if self.phrasing_label(item) == label]
        if not chosen:
            return (f"❌ No learned phrasing {as_text(label)!r} any more (kept or dropped already): refresh the "
                    "list.")  # fmt: skip
        return self.keep_phrasings(chosen, force=force)

    def keep_phrasings(self, learned: list[Any], force: bool = False) -> str:
        """Add `learned` phrasings to their entries through `build_faq` (validation, merge, gate)."""
        from chatbot.phrasings import with_phrasings
        from knowledge_base.loaders import validate_faq

        ids = {item.faq_id for item in learned}
        try:
            changed = [e for e in with_phrasings(self.kb.entries(), learned) if e.id in ids]
        except ValueError as exc:
            return f"❌ Not added: {as_text(str(exc))}"
        folder = chatbot_home() / "learning"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"phrasings-{len(list(folder.glob('phrasings-*.jsonl'))) + 1}.jsonl"
        path.write_text("".join(json.dumps(e.to_dict(), ensure_ascii=False) + "\n" for e in changed),
                        encoding="utf-8")  # fmt: skip
        problems = validate_faq(path)
        if problems:
            return "❌ Not added: " + "; ".join(as_text(p.message) for p in problems)
        update = self.plan_update(path, "merge")
        return self.build_faq(update.checked(), "merge", force=force)

    def drop_phrasing(self, label: str | None) -> str:
        """Never suggest the learned phrasing `label` again (the FAQ is unchanged)."""
        if not label:
            return "Choose a learned phrasing."
        chosen = next((item for item in self.learned_phrasings() if self.phrasing_label(item) == label), None)
        if chosen is None:
            return f"❌ No learned phrasing {as_text(label)!r} any more: refresh the list."
        self._dropped().drop(chosen.faq_id, chosen.phrasing)
        return f"✅ Dropped: {_code(chosen.faq_id)} will not be offered {as_text(chosen.phrasing)!r} again."

    # -- the model ----------------------------------------------------------------------------------------------
    def serving(self, known: list | None = None) -> str:
        """The registry name of what the engine serves (`none`: the base model); the backend's own name for an
        adapter the registry does not know."""
        from chatbot.adapters import list_adapters
        from chatbot.model import adapter_name

        served = self.engine.health().get("adapter")
        if not served:
            return BASE_MODEL
        known = list_adapters() if known is None else known
        # the backend names an adapter by its folder (`adapter` for the shipped one) or by the path it was given
        for a in sorted(known, key=lambda a: not a.active):
            if str(served) in (a.name, str(a.path), str(a.path.resolve()), adapter_name(a.path)):
                return a.name
        return str(served)

    def adapters(self) -> tuple[str, list[tuple[str, str]]]:
        """What the engine serves, a table of the base model and every registered adapter with their figures, what
        those figures mean, and the `(label, name)` choices that can be activated (the base model first)."""
        from chatbot.adapters import list_adapters

        known = list_adapters()
        serving = self.serving(known)
        rows = ["| model | validation perplexity | held-out perplexity, base → adapter | held-out ROUGE-L, "
                "base → adapter | training steps | |", "|---|---:|---:|---:|---:|---|"]  # fmt: skip
        mark = {True: "✅ serving", False: ""}
        rows.append(f"| {adapter_label(BASE_MODEL)} | — | — | — | — | {mark[serving == BASE_MODEL]} |")
        for a in known:
            ppl = f"{a.val_perplexity:.3g}" if a.val_perplexity is not None else "—"
            steps = str(a.steps) if a.steps is not None else "—"
            heldout, rouge = _heldout(a.path)
            served = mark[serving == a.name]
            rows.append(f"| {adapter_label(a.name)} | {ppl} | {heldout} | {rouge} | {steps} | {served} |")
        lines = [f"Serving: **{adapter_label(serving)}**", ""]
        if serving != BASE_MODEL and serving not in {a.name for a in known}:
            lines = [f"Serving: **{_code(serving)}**, an adapter the registry does not list (see "
                     "`chatbot adapters list`)", ""]  # fmt: skip
        lines += rows
        if not known:
            lines += ["", "No trained adapters yet (train one with `chatbot train`)."]
        lines += ["", FIGURES_EXPLAINED]
        choices = [("base model (no adapter)", BASE_MODEL)] + [(a.name, a.name) for a in known]
        return "\n".join(lines), choices

    def activate_adapter(self, name: str | None, force: bool = False) -> str:
        """Activate an adapter, or the base model (`none`), while serving: through the answer-quality gate (both
        answer the `[eval]` files through this engine; refused when the candidate is worse, unless `force`), then in
        the engine. The status shows the comparison table and what its rows mean."""
        from chatbot.adapters import AdapterError, GateError, activate
        from chatbot.gate import GateResult, GateRow

        if not name:
            return "Choose a model."
        try:
            record = activate(name, force=force, engine=self.engine)
        except GateError as exc:  # the gate refused it: say why and show the comparison
            return f"❌ Not activated: {as_text(str(exc))}\n\n{_explained(exc.result)}"
        except AdapterError as exc:  # the name is unknown
            return f"❌ Not activated: {as_text(str(exc))}"
        try:
            self.engine.set_adapter(record["path"] or BASE_MODEL)
        except Exception as exc:  # noqa: BLE001 - it does not load: the record goes back to what is served
            activate(record["previous"] or BASE_MODEL, force=True)
            return f"❌ Not activated: {as_text(str(exc))}"
        result = GateResult(True, tuple(record["gate"]), tuple(GateRow(**row) for row in record["comparison"]))
        name = record["name"]
        active = "The base model (no adapter)" if name == BASE_MODEL else f"Adapter {adapter_label(name)}"
        return f"✅ {active} is active.\n\n{_explained(result)}"


def _explained(result: Any) -> str:
    """An answer-check result (`chatbot.gate.GateResult`) as its table with what the rows mean, or its reasons when
    nothing was compared."""
    table = result.markdown()
    if not table:
        return " ".join(as_text(r) for r in result.reasons)
    return f"{table}\n\n{gate_legend(table)}"


def _heldout(folder: Path) -> tuple[str, str]:
    """`eval_heldout.json` of an adapter folder (`chatbot eval-dialogue --compare`) as two cells: perplexity and
    ROUGE-L, base → adapter ("—" when missing)."""
    import json

    try:
        report = json.loads((folder / "eval_heldout.json").read_text(encoding="utf-8"))
        base, tuned = report["base"], report["adapter"]
        return (f"{base['perplexity']:.3g} → {tuned['perplexity']:.3g}",
                f"{base['rouge_l']:.3f} → {tuned['rouge_l']:.3f}")  # fmt: skip
    except (OSError, ValueError, KeyError, TypeError):
        return "—", "—"


def _axes(width: float) -> tuple[Any, Any]:
    """A figure for the admin page and its one plot (matplotlib's Figure, not pyplot: safe in worker threads)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, 2.8), dpi=90)
    return fig, fig.add_subplot()


def per_day_plot(per_day: list[dict[str, Any]]) -> Any:
    """Conversations and messages per day (a matplotlib figure; no pyplot, so it is safe in worker threads)."""
    fig, ax = _axes(6)
    days = [d["day"][5:] for d in per_day]
    ax.bar(days, [d["messages"] for d in per_day], color="#fdba74", label="messages")
    ax.plot(days, [d["conversations"] for d in per_day], color="#c2410c", marker="o", label="conversations")
    ax.set_title("Per day")
    ax.legend(loc="upper left", fontsize=8)
    ax.tick_params(axis="x", labelsize=7, rotation=45)
    fig.tight_layout()
    return fig


def routes_plot(routes: dict[str, int]) -> Any:
    """Replies answered, drafted, handed off."""
    fig, ax = _axes(4)
    names = ["answer", "draft", "handoff"]
    ax.bar(names, [routes.get(n, 0) for n in names], color=["#16a34a", "#f59e0b", "#dc2626"])
    ax.set_title("Routes")
    fig.tight_layout()
    return fig


AUTONOMY_MODES = ("shadow", "draft", "auto")
SHARE_FIGURES = ("contained", "confirmed", "durable", "acceptance")


def _figure_value(name: str, value: float | None) -> str:
    if value is None:
        return "—"
    if name in (*SHARE_FIGURES, "handoffs"):
        return f"{value:.0%}"
    if name == "first_human_reply":
        return f"{value / 60:.1f} min"
    return f"{value:.1f} words"


def _when(at: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(at, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def resolution_plot(figures: dict[str, Any]) -> Any:
    """Contained, confirmed and durable resolution and copilot acceptance per day (shares)."""
    fig, ax = _axes(6)
    for name, color in zip(SHARE_FIGURES, ("#16a34a", "#2563eb", "#7c3aed", "#f59e0b"), strict=True):
        days = figures[name]["per_day"]
        ax.plot([d["day"][5:] for d in days], [d["value"] for d in days], marker="o", color=color, label=name)
    ax.set_ylim(0, 1.05)
    ax.set_title("Resolution per day")
    ax.legend(loc="lower left", fontsize=7)
    ax.tick_params(axis="x", labelsize=7, rotation=45)
    fig.tight_layout()
    return fig


def handoff_plot(handoffs: dict[str, Any]) -> Any:
    """Handoffs per day, stacked by reason."""
    from chatbot.resolution import HANDOFF_REASONS

    fig, ax = _axes(5)
    days = [d["day"][5:] for d in handoffs["per_day"]]
    bottom = [0] * len(days)
    for reason in HANDOFF_REASONS:
        counts = [d["counts"][reason] for d in handoffs["per_day"]]
        if any(counts):
            ax.bar(days, counts, bottom=bottom, label=reason)
            bottom = [b + c for b, c in zip(bottom, counts, strict=True)]
    ax.set_title("Handoffs per day by reason")
    if any(bottom):
        ax.legend(loc="upper left", fontsize=7)
    ax.tick_params(axis="x", labelsize=7, rotation=45)
    fig.tight_layout()
    return fig


def build(engine: Any) -> Any:
    """The admin page as Gradio Blocks."""
    import gradio as gr
    from gradio.utils import get_upload_folder

    page = AdminPage(engine, uploads=get_upload_folder())
    store = engine.store
    # uploaded FAQ files are removed from Gradio's cache after an hour (checked hourly)
    with gr.Blocks(title="Admin", delete_cache=(3600, 3600)) as demo:
        with gr.Row():
            gr.Markdown("## Admin")
            gr.HTML('<a href="/agent">Agent console</a> · <a href="/logout">Sign out</a>')
        with gr.Tab("FAQ", elem_id="tab-faq"):
            upload = gr.File(label="Upload an FAQ file (.jsonl, .csv or .md)", file_types=[".jsonl", ".csv", ".md"],
                             type="filepath", elem_id="faq-upload")  # fmt: skip
            mode = gr.Radio([(label, name) for name, label in MODES.items()], value="merge", elem_id="faq-mode",
                            label="How the file changes the FAQ")  # fmt: skip
            report = gr.Markdown("", elem_id="faq-report")
            diff = gr.Markdown("", elem_id="faq-diff")
            checked = gr.State(None)
            confirm = gr.Checkbox(False, label=removal_label(0), visible=False, elem_id="faq-confirm")
            build_button = gr.Button("Build and activate", variant="primary", interactive=False, elem_id="faq-build")
            force = gr.Checkbox(False, label="Force: make it current even if it answers the evaluation files worse",
                                elem_id="faq-force")  # fmt: skip
            build_status = gr.Markdown("", elem_id="faq-build-status")
            gr.Markdown("### Versions")
            versions = gr.Dataframe(headers=["version", "created", "entries", "current", "source"],
                                    interactive=False, elem_id="faq-versions")  # fmt: skip
            with gr.Row():
                version = gr.Dropdown(label="Version", choices=[], elem_id="version-select", allow_custom_value=True)
                activate = gr.Button("Activate / roll back", elem_id="version-activate")
            version_status = gr.Markdown("")
        with gr.Tab("Figures", elem_id="tab-figures"):
            refresh = gr.Button("Refresh", size="sm")
            summary = gr.Markdown("", elem_id="figures-summary")
            with gr.Row():
                day_plot = gr.Plot(label="Conversations and messages per day")
                route_plot = gr.Plot(label="Routes")
            unanswered = gr.Dataframe(headers=["question with no good source", "times"], interactive=False,
                                      elem_id="figures-unanswered",
                                      label="Top questions the FAQ does not answer (requests for a person and "
                                      "languages the bot does not answer in are counted apart, above)")  # fmt: skip
        with gr.Tab("Resolution", elem_id="tab-resolution"):
            resolution_refresh = gr.Button("Refresh", size="sm")
            resolution_summary = gr.Markdown("", elem_id="resolution-summary")
            with gr.Row():
                resolution_days = gr.Plot(label="Resolution per day")
                handoff_days = gr.Plot(label="Handoffs per day by reason")
            resolution_entries = gr.Dataframe(
                headers=["FAQ entry", "contained", "confirmed", "durable", "acceptance", "edit distance"],
                interactive=False, label="Per FAQ entry", elem_id="resolution-entries",
            )  # fmt: skip
        with gr.Tab("Autonomy", elem_id="tab-autonomy"):
            gr.Markdown("Each FAQ entry's mode: **shadow** (an agent writes the reply; the bot's draft is a "
                        "suggestion), **draft** (an agent approves the bot's draft), **auto** (the bot sends). "
                        "Reviews promote an entry one step and a correction or 👎 demotes it at once; "
                        "`[routing] mode` is the ceiling. Pin a mode to keep an entry there.")  # fmt: skip
            autonomy_table = gr.Dataframe(
                headers=["FAQ entry", "mode", "under the ceiling", "pinned", "drafts", "unedited", "corrections",
                         "👎", "last change"], interactive=False, elem_id="autonomy-table",
            )  # fmt: skip
            with gr.Row():
                autonomy_entry = gr.Dropdown(label="FAQ entry", choices=[], elem_id="autonomy-entry")
                autonomy_mode = gr.Radio([*AUTONOMY_MODES, "unpin"], label="Pin at", elem_id="autonomy-mode")
                autonomy_pin = gr.Button("Pin", elem_id="autonomy-pin")
            autonomy_status = gr.Markdown("", elem_id="autonomy-status")
            autonomy_history = gr.Dataframe(headers=["when", "mode", "pinned", "reason", "by"], interactive=False,
                                            label="The chosen entry's history", elem_id="autonomy-history")  # fmt: skip
        with gr.Tab("Gaps", elem_id="tab-gaps"):
            gr.Markdown("Questions the FAQ had no good source for that agents answered, grouped by meaning. Add a "
                        "group as a new FAQ entry in one step: it is merged into the FAQ in use through the same "
                        "validation and answer check as an upload.")  # fmt: skip
            gaps_refresh = gr.Button("Refresh", size="sm")
            gaps_table = gr.Dataframe(headers=["question", "agents' answer", "other phrasings", "conversations"],
                                      interactive=False, wrap=True, elem_id="gaps-table")  # fmt: skip
            with gr.Row():
                gap_choice = gr.Dropdown(label="Suggestion", choices=[], elem_id="gaps-choice")
                gap_add = gr.Button("Add as an FAQ entry", variant="primary", elem_id="gaps-add")
            gap_status = gr.Markdown("", elem_id="gaps-status")
            gr.Markdown("**Learned phrasings.** Customers' questions whose agent reply one FAQ entry clearly supports "
                        "(often not the entry the bot drafted from). Keep one to add it to that entry as another "
                        "phrasing (the same validation and answer check as an upload), or drop it. "
                        "`[learning] apply = \"auto\"` keeps them all at each refresh.")  # fmt: skip
            phrasings_table = gr.Dataframe(headers=["FAQ entry", "customer's question", "support", "conversations",
                                                    "drafted from"], interactive=False, wrap=True,
                                           elem_id="phrasings-table")  # fmt: skip
            with gr.Row():
                phrasing_choice = gr.Dropdown(label="Learned phrasing", choices=[], elem_id="phrasings-choice")
                phrasing_keep = gr.Button("Keep", variant="primary", elem_id="phrasings-keep")
                phrasing_drop = gr.Button("Drop", elem_id="phrasings-drop")
            phrasing_status = gr.Markdown("", elem_id="phrasings-status")
        with gr.Tab("Model", elem_id="tab-model"):
            adapter_info = gr.Markdown("", elem_id="model-info")
            with gr.Row():
                adapter = gr.Dropdown(label="Model to activate", choices=[], elem_id="model-select")
                adapter_go = gr.Button("Activate", elem_id="model-activate")
            adapter_force = gr.Checkbox(False, label="Force: activate even if it answers the evaluation files worse")
            adapter_status = gr.Markdown("", elem_id="model-status")

        def confirmation(record: dict | None) -> Any:
            removed = len(record["removed"]) if record else 0
            return gr.update(value=False, visible=removed > 0, label=removal_label(removed))

        def on_figures(request: gr.Request):
            require_admin(store, request)
            return page.figures()

        def on_upload(path: str | None, how: str, request: gr.Request):
            require_admin(store, request)
            text, diff_md, record = page.check_upload(path, how or "merge")
            return text, diff_md, record, gr.update(interactive=record is not None), "", confirmation(record)

        def on_mode(record: dict | None, how: str, request: gr.Request):
            require_admin(store, request)
            diff_md, record = page.preview(record, how)
            return diff_md, record, confirmation(record), "", gr.update(interactive=record is not None)

        def on_build(record: dict | None, how: str, confirmed: bool, forced: bool, request: gr.Request,
                     progress=gr.Progress(track_tqdm=True)):  # noqa: B008  # fmt: skip
            require_admin(store, request)
            status = page.build_faq(record, how, confirm_removal=bool(confirmed), force=bool(forced),
                                    progress=progress)  # fmt: skip
            built = status.startswith("✅")
            return (
                status,
                page.versions_table(),
                gr.update(choices=page.version_choices()),
                gr.update(interactive=not built and record is not None),
                gr.update(value=False) if built else gr.update(),
            )

        def on_activate(v: str | None, forced: bool, request: gr.Request):
            require_admin(store, request)
            return page.activate_version(v, force=bool(forced)), page.versions_table()

        def load_all(request: gr.Request):
            require_admin(store, request)
            info, choices = page.adapters()
            return (page.versions_table(), gr.update(choices=page.version_choices(), value=page.kb.current_version),
                    *page.figures(), info,
                    gr.update(choices=choices, value=page.serving()))  # fmt: skip

        def on_resolution(request: gr.Request):
            require_admin(store, request)
            return page.resolution()

        def on_autonomy(request: gr.Request):
            require_admin(store, request)
            return page.autonomy_rows(), gr.update(choices=page.autonomy_entries())

        def on_pin(faq_id: str | None, how: str | None, request: gr.Request):
            admin = require_admin(store, request)
            status = page.pin_mode(faq_id, how, admin)
            return status, page.autonomy_rows(), page.autonomy_history(faq_id)

        def on_entry(faq_id: str | None, request: gr.Request):
            require_admin(store, request)
            return page.autonomy_history(faq_id)

        def on_gaps(request: gr.Request):
            require_admin(store, request)
            suggestions = page.gap_suggestions()
            return page.gaps_table(suggestions), gr.update(choices=[s.question for s in suggestions], value=None)

        def on_phrasings(request: gr.Request):
            require_admin(store, request)
            learned, status = page.refresh_phrasings()
            return (page.phrasings_table(learned), gr.update(choices=[page.phrasing_label(i) for i in learned],
                                                             value=None), status)  # fmt: skip

        def on_keep(label: str | None, request: gr.Request):
            require_admin(store, request)
            status = page.keep_phrasing(label)
            table, choices, _ = on_phrasings(request)
            return status, table, choices, page.versions_table()

        def on_drop(label: str | None, request: gr.Request):
            require_admin(store, request)
            status = page.drop_phrasing(label)
            table, choices, _ = on_phrasings(request)
            return status, table, choices, page.versions_table()

        def on_gap_add(question: str | None, request: gr.Request):
            require_admin(store, request)
            status = page.add_gap(question)
            return (status, *on_gaps(request), page.versions_table())

        def on_adapter(name: str | None, forced: bool, request: gr.Request):
            require_admin(store, request)
            status = page.activate_adapter(name, force=bool(forced))
            return status, page.adapters()[0]

        demo.load(load_all, None, [versions, version, summary, day_plot, route_plot, unanswered, adapter_info,
                                   adapter], api_name="load")  # fmt: skip
        upload.upload(on_upload, [upload, mode], [report, diff, checked, build_button, build_status, confirm],
                      api_name="check_faq")  # fmt: skip
        upload.clear(lambda: ("", "", None, gr.update(interactive=False), "", gr.update(value=False, visible=False)),
                     None, [report, diff, checked, build_button, build_status, confirm],
                     api_visibility="private")  # fmt: skip
        mode.change(on_mode, [checked, mode], [diff, checked, confirm, build_status, build_button], api_name="faq_mode")
        confirm.input(lambda: "", None, [build_status], api_visibility="private")  # an earlier refusal no longer holds
        build_button.click(on_build, [checked, mode, confirm, force],
                           [build_status, versions, version, build_button, confirm], api_name="build_faq")  # fmt: skip
        activate.click(on_activate, [version, force], [version_status, versions], api_name="activate_version")
        refresh.click(on_figures, None, [summary, day_plot, route_plot, unanswered], api_name="figures")
        adapter_go.click(
            on_adapter, [adapter, adapter_force], [adapter_status, adapter_info], api_name="activate_adapter"
        )
        resolution_outputs = [resolution_summary, resolution_days, handoff_days, resolution_entries]
        resolution_refresh.click(on_resolution, None, resolution_outputs, api_name="resolution")
        demo.load(on_resolution, None, resolution_outputs, api_visibility="private")
        demo.load(on_autonomy, None, [autonomy_table, autonomy_entry], api_name="autonomy")
        autonomy_entry.change(on_entry, [autonomy_entry], [autonomy_history], api_name="autonomy_history")
        autonomy_pin.click(on_pin, [autonomy_entry, autonomy_mode], [autonomy_status, autonomy_table, autonomy_history],
                           api_name="pin_mode")  # fmt: skip
        demo.load(on_gaps, None, [gaps_table, gap_choice], api_visibility="private")
        gaps_refresh.click(on_gaps, None, [gaps_table, gap_choice], api_name="gaps")
        gap_add.click(on_gap_add, [gap_choice], [gap_status, gaps_table, gap_choice, versions], api_name="add_gap")
        demo.load(on_phrasings, None, [phrasings_table, phrasing_choice, phrasing_status], api_visibility="private")
        gaps_refresh.click(on_phrasings, None, [phrasings_table, phrasing_choice, phrasing_status],
                           api_name="phrasings")  # fmt: skip
        phrasing_outputs = [phrasing_status, phrasings_table, phrasing_choice, versions]
        phrasing_keep.click(on_keep, [phrasing_choice], phrasing_outputs, api_name="keep_phrasing")
        phrasing_drop.click(on_drop, [phrasing_choice], phrasing_outputs, api_name="drop_phrasing")
    demo.page = page
    return demo

"""The admin page at `/admin` (login, admin role): FAQ upload with a validation report, a diff before the build,
versions with activation and rollback, usage figures and plots, and the LoRA adapters."""

# No `from __future__ import annotations`: Gradio reads the `gr.Request` hints of the handlers at runtime.
from pathlib import Path
from typing import Any

from ui.render import as_text

MAX_FAQ_BYTES = 5 * 1024 * 1024
"""Largest FAQ file the admin page accepts (Gradio refuses bigger uploads before they reach a handler)."""


def require_admin(store: Any, request: Any) -> str:
    """The logged-in admin's name; refuses anyone else (the page's middleware already does, this is the handler's
    own check)."""
    import gradio as gr

    name = getattr(request, "username", None) if request is not None else None
    users = {u.name: u for u in store.users()} if name else {}
    if not name or name not in users or users[name].role != "admin":
        raise gr.Error("only admins may do this", title="Not allowed")
    return name


def _ids(ids: tuple[str, ...], limit: int = 30) -> str:
    shown = ", ".join(f"`{i}`" if "`" not in i else as_text(i) for i in ids[:limit])
    return shown + (f" and {len(ids) - limit} more" if len(ids) > limit else "") if ids else "none"


class AdminPage:
    """The admin handlers (the Gradio wiring is in `build`)."""

    def __init__(self, engine: Any, uploads: str | Path | None = None):
        self.engine = engine
        self.uploads = Path(uploads).resolve() if uploads is not None else None
        """Gradio's upload folder: `check_upload` reads files only from there (None: any path, for direct calls)."""

    @property
    def kb(self) -> Any:
        return self.engine.kb

    # -- FAQ ----------------------------------------------------------------------------------------------------
    def check_upload(self, path: str | None) -> tuple[str, str, str | None]:
        """Validate an uploaded FAQ file: `(report, diff, path to build or None)`. Nothing changes yet."""
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
        diff = self.kb.diff(file)
        n = len(self._entries_of(file))
        report = f"✅ **{as_text(file.name)}** is valid: {n} entries."
        if diff.empty:
            diff_md = "No change against the version in use."
        else:
            diff_md = (f"**What building it changes** (against version {as_text(str(self.kb.current_version))}):\n\n"
                       f"- added ({len(diff.added)}): {_ids(diff.added)}\n"
                       f"- changed ({len(diff.changed)}): {_ids(diff.changed)}\n"
                       f"- removed ({len(diff.removed)}): {_ids(diff.removed)}")  # fmt: skip
        return report, diff_md, str(file)

    @staticmethod
    def _entries_of(path: Path) -> list:
        from knowledge_base.loaders import load_faq

        return load_faq(path)

    def build_faq(self, path: str | None, progress: Any = None, force: bool = False) -> str:
        """Build the checked file into a new version and make it current through the answer-quality gate (refused
        when it answers the `[eval]` files worse than the current version, unless `force`); searches keep running
        meanwhile, and a refused version stays on disk."""
        if not path:
            return "Upload and check a valid FAQ file first."
        if progress is not None:
            progress(0.05, desc="building the index")
        try:
            info = self.kb.build(path, progress=progress is not None, activate=False)
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
                    f"current anyway).\n\n{reasons}\n\n{exc.result.markdown()}")  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - the current version keeps answering; say why
            return f"❌ {as_text(str(exc))}"
        table = result.markdown()
        notes = table or " ".join(as_text(r) for r in result.reasons)
        return f"✅ Version **{as_text(info.version)}** {live.format(entries=info.entries)}.\n\n{notes}"

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
    def figures(self, days: int = 30) -> tuple[str, Any, Any, list[list[Any]]]:
        """Summary text, a per-day plot, a route-share plot, and the top questions that found no good source."""
        stats = self.engine.store.stats(days=days)
        share = stats["route_share"]
        routes = stats["routes"]
        approval = "—" if stats["approval_rate"] is None else f"{stats['approval_rate']:.0%}"
        edit = "—" if stats["edit_rate"] is None else f"{stats['edit_rate']:.0%}"
        conversations = sum(d["conversations"] for d in stats["per_day"])
        messages = sum(d["messages"] for d in stats["per_day"])
        summary = (
            f"Last {days} days: **{conversations}** conversations and **{messages}** messages (summed per day).\n\n"
            f"| answered | drafted | handed off | drafts approved | of which edited | 👍 | 👎 |\n"
            f"|---:|---:|---:|---:|---:|---:|---:|\n"
            f"| {share['answer']:.0%} ({routes['answer']}) | {share['draft']:.0%} ({routes['draft']}) "
            f"| {share['handoff']:.0%} ({routes['handoff']}) | {approval} | {edit} "
            f"| {stats['thumbs_up']} | {stats['thumbs_down']} |\n\n"
            f"Drafts: {stats['drafts']['pending']} pending, {stats['drafts']['approved']} approved, "
            f"{stats['drafts']['edited']} edited, {stats['drafts']['rejected']} rejected.\n\n"
            f"Generated replies that failed the claim check and were replaced by the sources' own words: "
            f"**{stats['rejected']}**" + "".join(f"\n- {r['n']} × {r['reason']}" for r in stats["rejection_reasons"])
        )
        unanswered = [[r["question"], r["n"]] for r in stats["top_unanswered"]]  # Dataframe cells are plain text
        return summary, per_day_plot(stats["per_day"]), routes_plot(stats["routes"]), unanswered

    # -- adapters -----------------------------------------------------------------------------------------------
    def adapters(self) -> tuple[str, list[str]]:
        """The adapter the engine serves, every registered adapter with its validation perplexity, and the names
        that can be activated."""
        from chatbot.adapters import list_adapters

        serving = self.engine.health().get("adapter")
        known = list_adapters()
        lines = [f"Serving: **{as_text(str(serving or 'none (base model)'))}**", ""]
        for a in known:
            ppl = f"validation perplexity {a.val_perplexity:.3g}" if a.val_perplexity is not None else "no metrics"
            steps = f", {a.steps} steps" if a.steps is not None else ""
            lines.append(f"- {_ids((a.name,))} — {ppl}{steps}" + (" (active)" if a.active else ""))
        if not known:
            lines.append("No trained adapters yet (train one with `chatbot train`).")
        return "\n".join(lines), [a.name for a in known]

    def activate_adapter(self, name: str | None, force: bool = False) -> str:
        """Activate another adapter while serving: through the answer-quality gate (both adapters answer the
        `[eval]` files through this engine; refused when the candidate is worse, unless `force`), then in the
        engine. The status shows the comparison table."""
        from chatbot.adapters import AdapterError, GateError, activate
        from chatbot.gate import GateResult, GateRow

        if not name:
            return "Choose an adapter."
        try:
            record = activate(name, force=force, engine=self.engine)
        except GateError as exc:  # the gate refused it: say why and show the comparison
            return f"❌ Not activated: {as_text(str(exc))}\n\n{exc.result.markdown()}"
        except AdapterError as exc:  # the name is unknown
            return f"❌ Not activated: {as_text(str(exc))}"
        try:
            active = self.engine.set_adapter(record["path"] or "none")
        except Exception as exc:  # noqa: BLE001 - it does not load: the record goes back to what is served
            activate(record["previous"] or "none", force=True)
            return f"❌ Not activated: {as_text(str(exc))}"
        table = GateResult(True, rows=tuple(GateRow(**row) for row in record["comparison"])).markdown()
        notes = table or " ".join(as_text(r) for r in record["gate"])
        return f"✅ Adapter **{as_text(str(active))}** is active.\n\n{notes}"


def per_day_plot(per_day: list[dict[str, Any]]) -> Any:
    """Conversations and messages per day (a matplotlib figure; no pyplot, so it is safe in worker threads)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 2.8), dpi=90)
    ax = fig.add_subplot()
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
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4, 2.8), dpi=90)
    ax = fig.add_subplot()
    names = ["answer", "draft", "handoff"]
    ax.bar(names, [routes.get(n, 0) for n in names], color=["#16a34a", "#f59e0b", "#dc2626"])
    ax.set_title("Routes")
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
            report = gr.Markdown("", elem_id="faq-report")
            diff = gr.Markdown("", elem_id="faq-diff")
            checked = gr.State(None)
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
                                      label="Top questions the FAQ does not answer")  # fmt: skip
        with gr.Tab("Model", elem_id="tab-model"):
            adapter_info = gr.Markdown("")
            with gr.Row():
                adapter = gr.Dropdown(label="Adapter", choices=[], allow_custom_value=True)
                adapter_go = gr.Button("Activate")
            adapter_force = gr.Checkbox(False, label="Force: activate even if it answers the evaluation files worse")
            adapter_status = gr.Markdown("")

        def on_figures(request: gr.Request):
            require_admin(store, request)
            return page.figures()

        def on_upload(path: str | None, request: gr.Request):
            require_admin(store, request)
            text, diff_md, ok = page.check_upload(path)
            return text, diff_md, ok, gr.update(interactive=ok is not None), ""

        def on_build(path: str | None, forced: bool, request: gr.Request,
                     progress=gr.Progress(track_tqdm=True)):  # noqa: B008  # fmt: skip
            require_admin(store, request)
            status = page.build_faq(path, progress, force=bool(forced))
            return (
                status,
                page.versions_table(),
                gr.update(choices=page.version_choices()),
                gr.update(interactive=False),
            )

        def on_activate(v: str | None, forced: bool, request: gr.Request):
            require_admin(store, request)
            return page.activate_version(v, force=bool(forced)), page.versions_table()

        def load_all(request: gr.Request):
            require_admin(store, request)
            info, names = page.adapters()
            return (page.versions_table(), gr.update(choices=page.version_choices(), value=page.kb.current_version),
                    *page.figures(), info,
                    gr.update(choices=names))  # fmt: skip

        def on_adapter(name: str | None, forced: bool, request: gr.Request):
            require_admin(store, request)
            status = page.activate_adapter(name, force=bool(forced))
            return status, page.adapters()[0]

        demo.load(load_all, None, [versions, version, summary, day_plot, route_plot, unanswered, adapter_info,
                                   adapter], api_name="load")  # fmt: skip
        upload.upload(on_upload, [upload], [report, diff, checked, build_button, build_status], api_name="check_faq")
        upload.clear(lambda: ("", "", None, gr.update(interactive=False), ""), None,
                     [report, diff, checked, build_button, build_status], api_visibility="private")  # fmt: skip
        build_button.click(
            on_build, [checked, force], [build_status, versions, version, build_button], api_name="build_faq"
        )
        activate.click(on_activate, [version, force], [version_status, versions], api_name="activate_version")
        refresh.click(on_figures, None, [summary, day_plot, route_plot, unanswered], api_name="figures")
        adapter_go.click(
            on_adapter, [adapter, adapter_force], [adapter_status, adapter_info], api_name="activate_adapter"
        )
    demo.page = page
    return demo

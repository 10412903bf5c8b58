"""The admin page: an FAQ upload lists what it adds, changes and removes with the entries' text, merges or replaces
as chosen, and builds nothing that removes entries before the admin confirms; the unanswered-questions list leaves
out requests for a person and languages the bot does not answer in; the Model tab names each model one way,
explains its figures and activates the base model through the answer gate. Direct calls on `AdminPage` with the
hash embedder and the scripted LM, the same through Gradio's client on a live server, and the upload -> confirm
flow in Chromium."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from gradio_client import Client, handle_file

from knowledge_base.kb import demo_faq_path
from knowledge_base.records import FaqEntry
from tests.fixtures_ui import PASSWORDS
from ui.auth import COOKIE


def plain(markdown: str) -> str:
    """Markdown with its backslash escapes removed (what the reader sees)."""
    return markdown.replace("\\", "")


def demo_rows() -> list[dict]:
    return [json.loads(line) for line in demo_faq_path().read_text(encoding="utf-8").splitlines()]


def five_entry_file(folder: Path) -> Path:
    """Four demo entries (the first with a changed answer) and a new one: the file that replaced all 31."""
    rows = demo_rows()[:4]
    rows[0] = {**rows[0], "answer": rows[0]["answer"].replace("free of charge", "for free")}
    rows.append({"id": "gift_wrap", "question": "Do you gift wrap?", "answer": "Yes, for 3 EUR at checkout."})
    path = folder / "five.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def page(engine):
    from ui.admin import AdminPage

    return AdminPage(engine)


# -- FAQ changes ------------------------------------------------------------------------------------------------
def test_merge_adds_and_updates_and_keeps_every_other_entry(page, tmp_path):
    before = page.kb.current_version
    report, changes, checked = page.check_upload(str(five_entry_file(tmp_path)))
    assert "is valid: 5 entries" in plain(report)
    assert "1 added · 1 changed · 0 removed" in changes and "3 entries of the file are unchanged" in changes
    assert "the 27 entries the file lacks stay" in changes
    assert "**Do you gift wrap?** (`gift_wrap`): Yes, for 3 EUR at checkout" in plain(changes)
    assert "**How do I cancel my order?** (`cancel_order`)" in changes
    assert "answer: You can cancel an order **for** free ~~of charge~~ until it ships" in changes
    assert "Removed" not in changes and checked["removed"] == []

    status = page.build_faq(checked, "merge")
    assert status.startswith("✅") and "with 32 entries" in status and page.kb.current_version != before
    entries = {e.id: e for e in page.kb.entries()}
    assert len(entries) == 32 and "track_order" in entries and "gift_wrap" in entries
    assert "for free" in entries["cancel_order"].answer
    assert page.versions_table()[0][4].endswith(f"(merged into {before})")


def test_replace_lists_each_removal_and_builds_only_once_confirmed(page, tmp_path):
    before, n_versions = page.kb.current_version, len(page.kb.versions())
    _, changes, checked = page.check_upload(str(five_entry_file(tmp_path)), "replace")
    assert "1 added · 1 changed · 27 removed" in changes and "the new version has 5 entries" in changes
    assert "#### Removed (27)" in changes and "**How can I track my order?** (`track_order`)" in changes
    assert "Building this removes 27 entries" in changes and "Yes, remove these 27 entries" in changes
    assert len(checked["removed"]) == 27

    refused = page.build_faq(checked, "replace")  # the wrong click: Build without ticking the confirmation
    assert refused.startswith("❌ Not built: this removes 27 entries") and "choose *Merge*" in refused
    assert page.kb.current_version == before and len(page.kb.versions()) == n_versions, "nothing may be built"

    status = page.build_faq(checked, "replace", confirm_removal=True)
    assert status.startswith("✅") and "with 5 entries" in status
    assert sorted(e.id for e in page.kb.entries()) == sorted(
        ["cancel_order", "change_order", "change_shipping_address", "check_cancellation_fee", "gift_wrap"]
    )


def test_switching_the_mode_shows_that_modes_changes(page, tmp_path):
    _, merged, checked = page.check_upload(str(five_entry_file(tmp_path)))
    replaced, checked = page.preview(checked, "replace")
    assert "27 removed" in replaced and checked["mode"] == "replace" and len(checked["removed"]) == 27
    merged_again, checked = page.preview(checked, "merge")
    assert merged_again == merged and checked["removed"] == []
    assert page.preview(None, "merge") == ("", None)
    with pytest.raises(ValueError, match="mode must be one of merge, replace"):
        page.preview(checked, "overwrite")


def test_a_stale_check_or_another_mode_builds_nothing(page, tmp_path):
    from ui.admin import AdminPage

    _, _, checked = page.check_upload(str(five_entry_file(tmp_path)), "replace")
    other = AdminPage(page.engine)  # another admin builds meanwhile: the removals shown are not today's
    extra = tmp_path / "extra.jsonl"
    extra.write_text(demo_faq_path().read_text(encoding="utf-8") + json.dumps(
        {"id": "gift_card", "question": "Do you sell gift cards?", "answer": "Yes, from 10 EUR."}) + "\n")  # fmt: skip
    _, _, theirs = other.check_upload(str(extra))
    assert other.build_faq(theirs).startswith("✅")
    current = page.kb.current_version

    stale = page.build_faq(checked, "replace", confirm_removal=True)
    assert stale.startswith("❌ Not built: the FAQ in use changed since the check") and current in stale
    wrong_mode = page.build_faq(checked, "merge")
    assert wrong_mode.startswith("❌ Not built: the changes shown are for *replace*")
    assert page.kb.current_version == current and len(page.kb.entries()) == 32


def test_an_unchanged_file_builds_nothing(page):
    _, changes, checked = page.check_upload(str(demo_faq_path()), "replace")
    assert changes.startswith("No change against version") and "would change nothing" in changes
    versions = len(page.kb.versions())
    assert page.build_faq(checked).startswith("Nothing to build")
    assert len(page.kb.versions()) == versions
    assert page.build_faq(None) == "Upload and check a valid FAQ file first."


def test_changes_show_questions_phrasings_and_category_and_escape_markup(page, tmp_path):
    row = demo_rows()[0]
    new = {**row, "question": "How can I cancel an order?", "alt_questions": [*row["alt_questions"][1:], "stop it"],
           "category": "ORDERS", "answer": row["answer"] + " <b>Bold</b> [x](javascript:alert(1))"}  # fmt: skip
    path = tmp_path / "one.jsonl"
    path.write_text(json.dumps(new) + "\n", encoding="utf-8")
    _, changes, _ = page.check_upload(str(path))
    assert "question: How ~~do~~ **can** I cancel ~~my~~ **an** order?" in plain(changes)
    assert "other phrasings: **+ stop it**; ~~i need help to cancel order 00004587345~~" in plain(changes)
    assert "category: ORDER → ORDERS" in changes
    assert "&lt;b&gt;Bold&lt;/b&gt;" in changes and "](javascript" not in changes


LONG = " ".join(f"w{i}" for i in range(30))


@pytest.mark.parametrize(
    "old, new, shown",
    [
        ("a b c", "a x c", "a ~~b~~ **x** c"),
        ("a b", "a b c", "a b **c**"),
        ("a b c", "a b", "a b ~~c~~"),
        ("a  b\nc", "a b c", "only spacing changed"),
        (LONG + " old", LONG + " new", "… w22 w23 w24 w25 w26 w27 w28 w29 ~~old~~ **new**"),
        ("*x* y", "*x* z", "\\*x\\* ~~y~~ **z**"),
    ],
)
def test_word_change(old, new, shown):
    from ui.admin import word_change

    assert word_change(old, new) == shown


def test_merge_entries_keeps_order_and_current_entries_that_did_not_change():
    from knowledge_base.kb import merge_entries

    current = [FaqEntry("a", "A?", "1", language="en"), FaqEntry("b", "B?", "2", language="en")]
    incoming = [FaqEntry("c", "C?", "3"), FaqEntry("b", "B?", "two"), FaqEntry("a", "A?", "1")]
    merged = merge_entries(current, incoming)
    assert [e.id for e in merged] == ["a", "b", "c"]
    assert merged[0] is current[0], "an unchanged entry keeps its detected language"
    assert merged[1].answer == "two"
    assert merge_entries([], incoming) == incoming


# -- figures ----------------------------------------------------------------------------------------------------
def test_unanswered_questions_leave_out_requests_for_a_person_and_other_languages(page, engine):
    for text in ("I want to talk to a person", "Where do you keep the purple unicorns?",
                 "where do you keep the purple unicorns?", "Wo kann ich ein fliegendes Einhorn kaufen?",
                 "¿Dónde guardan los unicornios morados de colores?"):  # fmt: skip
        engine.reply(engine.start_conversation(), text)
    answered = engine.start_conversation()
    engine.reply(answered, "How do I cancel my order?")
    engine.request_human(answered)  # the button after an answer: the question before it was answered

    summary, _, _, unanswered = page.figures()
    # the same question in other letter cases counts once, in its latest spelling
    assert unanswered == [["where do you keep the purple unicorns?", 2],
                          ["¿Dónde guardan los unicornios morados de colores?", 1]]  # fmt: skip
    assert "requests for a person: **1**" in summary and "does not answer in: de: 1." in summary
    stats = engine.store.stats()  # without the filters: every handed-off question, as before
    assert len(stats["top_unanswered"]) == 4 and stats["person_requests"] == 0


# -- the Model tab ----------------------------------------------------------------------------------------------
@pytest.fixture
def shipped(tmp_path, monkeypatch):
    """A shipped adapter in a folder named `adapter` (as `training/adapter/`), with held-out figures."""
    from tests.test_training_adapters import fake_output

    folder = fake_output(tmp_path / "training" / "adapter", 6.4)
    heldout = {"base": {"perplexity": 11.22, "rouge_l": 0.1466}, "adapter": {"perplexity": 4.866, "rouge_l": 0.2854}}
    (folder / "eval_heldout.json").write_text(json.dumps(heldout))
    monkeypatch.setattr("chatbot.adapters.shipped_adapter", lambda: folder)
    return folder


def test_the_model_tab_names_the_shipped_adapter_one_way_and_explains_its_figures(page, engine, shipped):
    engine.backend.set_adapter("adapter")  # the transformers backend names an adapter by its folder
    info, choices = page.adapters()
    assert info.startswith("Serving: **`shipped` (shipped with the app)**")
    assert "| `shipped` (shipped with the app) | 6.4 | 11.2 → 4.87 | 0.147 → 0.285 | 10 | ✅ serving |" in info
    assert "| the base model (no adapter) | — | — | — | — |  |" in info
    assert "`adapter`" not in info and page.serving() == "shipped"
    assert "number of words the model hesitates between" in info and "ROUGE-L, how much of the agent's" in info
    assert choices == [("base model (no adapter)", "none"), ("shipped", "shipped")]


def test_the_base_model_is_activated_through_the_same_gate(page, engine, shipped, monkeypatch):
    from chatbot.adapters import active_record
    from chatbot.gate import GateResult, GateRow

    engine.backend.set_adapter(str(shipped))
    rows = (GateRow("answered_accuracy", 0.9, 0.5, -0.4, True), GateRow("latency_s_p50", 1.0, 0.8, -0.2))
    worse = GateResult(False, ("answered_accuracy fell from 0.900 to 0.500 (tolerance 0.02)",), rows)
    candidates = []

    def gate(engine_, candidate, config=None, progress=False):
        candidates.append(candidate)
        return worse

    monkeypatch.setattr("chatbot.gate.check_adapter", gate)
    refused = page.activate_adapter("none")
    assert candidates == [None], "the gate compares the base model (no adapter folder)"
    assert refused.startswith("❌ Not activated:") and "| ❌ answered_accuracy | 0.900 | 0.500 | -0.400 |" in refused
    assert "*answered_accuracy*: of the in-scope questions the bot answered itself" in refused
    assert "*latency_s_p50*: median seconds per reply" in refused and "*fallback_share*" not in refused
    assert page.serving() == "shipped" and active_record()["name"] == "shipped"

    monkeypatch.setattr("chatbot.gate.check_adapter", lambda *a, **k: GateResult(True, (), worse.rows[1:]))
    done = page.activate_adapter("none")
    assert done.startswith("✅ The base model (no adapter) is active.") and "*latency_s_p50*" in done
    assert engine.health()["adapter"] is None and active_record()["name"] == "none"
    assert page.adapters()[0].startswith("Serving: **the base model (no adapter)**")
    assert page.activate_adapter(None) == "Choose a model."


def test_registered_adapters_are_listed_and_activated_through_the_gate(page, engine, tmp_path, monkeypatch):
    from chatbot.adapters import register
    from tests.test_training_adapters import fake_output

    monkeypatch.setattr("chatbot.adapters.shipped_adapter", lambda: None)
    info, choices = page.adapters()
    assert choices == [("base model (no adapter)", "none")] and "No trained adapters yet" in info
    for name, ppl in (("good", 5.0), ("worse", 9.0)):
        register(fake_output(tmp_path / name, ppl))
    info, choices = page.adapters()
    assert [name for _, name in choices] == ["none", "good", "worse"]
    assert "| `good` | 5 | — | — | 10 |  |" in info and "| `worse` | 9 | — | — | 10 |  |" in info
    activated = page.activate_adapter("good")
    assert activated.startswith("✅ Adapter `good` is active.") and engine.health()["adapter"].endswith("good")
    assert "no \\[eval\\] files configured" in activated  # the answer gate (tests/test_gate.py) had nothing to run
    assert "| `good` | 5 | — | — | 10 | ✅ serving |" in page.adapters()[0]
    assert page.activate_adapter("nonesuch").startswith("❌ Not activated: unknown adapter 'nonesuch'")


def test_an_adapter_the_registry_does_not_know_is_named_as_served(page, engine, shipped):
    engine.backend.set_adapter("/elsewhere/experiment-7")
    assert page.adapters()[0].startswith("Serving: **`/elsewhere/experiment-7`**, an adapter the registry does not")


# -- through Gradio's client on a live server -------------------------------------------------------------------
def admin_client(live) -> Client:
    return Client(f"{live.url}/admin/", verbose=False, headers={"Cookie": f"{COOKIE}={live.login('ada')}"})


def test_admin_client_checks_previews_confirms_and_builds(live_reset, tmp_path):
    kb = live_reset.engine.kb
    before = kb.current_version
    admin = admin_client(live_reset)
    # (the client leaves out the Build button's update)
    report, changes, _, confirm = admin.predict(handle_file(str(five_entry_file(tmp_path))), "merge",
                                                api_name="/check_faq")  # fmt: skip
    assert "is valid: 5 entries" in plain(report) and "0 removed" in changes and confirm["visible"] is False
    changes, confirm, _ = admin.predict("replace", api_name="/faq_mode")
    assert "27 removed" in changes and confirm["visible"] is True
    assert confirm["label"] == "Yes, remove these 27 entries" and confirm["value"] is False

    status, *_ = admin.predict("replace", False, False, api_name="/build_faq")
    assert status.startswith("❌ Not built: this removes 27 entries") and kb.current_version == before
    status, versions, *_ = admin.predict("replace", True, False, api_name="/build_faq")
    assert "is live with 5 entries" in status and versions["data"][0][3] == "✅"

    message, _ = admin.predict(before, False, api_name="/activate_version")
    assert before in message and kb.current_version == before and len(kb.entries()) == 31


def test_admin_client_reports_problems_and_refuses_a_build_without_a_check(live_reset, tmp_path):
    admin = admin_client(live_reset)
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"id": "a", "question": "Where?", "answer": "Here."}\n{"id": "a", "question": "x"}\n{oops\n',
                      encoding="utf-8")  # fmt: skip
    report, changes, _, confirm = admin.predict(handle_file(str(broken)), "merge", api_name="/check_faq")
    assert "problem(s)" in report and "| 2 |" in report and "| 3 |" in report and changes == ""
    assert confirm["visible"] is False
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes("id,question,answer\nx,Où est ma commande?,Ici\n".encode("latin-1"))
    report, *_ = admin.predict(handle_file(str(latin1)), "merge", api_name="/check_faq")
    assert "not valid UTF-8 (byte 4)" in plain(report) and "| 2 |" in report
    status, *_ = admin.predict("merge", False, False, api_name="/build_faq")
    assert status == "Upload and check a valid FAQ file first."


def test_admin_client_model_tab_offers_the_base_model(live_reset):
    admin = admin_client(live_reset)
    *_, info, model = admin.predict(api_name="/load")
    assert ["base model (no adapter)", "none"] in [list(c) for c in model["choices"]]
    assert "What the figures mean" in info
    status, info = admin.predict("none", False, api_name="/activate_adapter")
    assert status.startswith("✅ The base model (no adapter) is active.")
    assert info.startswith("Serving: **the base model (no adapter)**")


# -- in Chromium ------------------------------------------------------------------------------------------------
@pytest.mark.browser
def test_upload_shows_the_changes_and_removal_waits_for_confirmation(browser, live_reset, tmp_path, artifacts):
    kb = live_reset.engine.kb
    before = kb.current_version
    for text in ("I want to talk to a person", "Where do you keep the purple unicorns?"):
        live_reset.engine.reply(live_reset.engine.start_conversation(), text)
    context = browser.new_context(viewport={"width": 1200, "height": 1000}, locale="en-US")
    context.set_default_timeout(15000)
    try:
        page = context.new_page()
        page.goto(live_reset.url + "/admin")
        page.wait_for_selector('input[name="password"]')
        page.fill('input[name="username"]', "ada")
        page.fill('input[name="password"]', PASSWORDS["ada"])
        page.click('button[type="submit"]')
        page.wait_for_selector("#faq-upload")

        page.get_by_role("tab", name="Figures").click()
        page.wait_for_function("t => document.querySelector('#figures-unanswered')?.innerText.includes(t)",
                               arg="Where do you keep the purple unicorns?")  # fmt: skip
        figures = page.inner_text("#tab-figures")
        assert "I want to talk to a person" not in figures and "requests for a person: 1" in figures
        page.screenshot(path=artifacts / "admin-figures-unanswered.png", full_page=True)
        page.get_by_role("tab", name="FAQ").click()
        page.set_input_files("#faq-upload input[type=file]", str(five_entry_file(tmp_path)))
        page.wait_for_selector("#faq-diff >> text=1 added · 1 changed · 0 removed")
        assert page.locator("#faq-diff del").first.inner_text() == "of charge"  # the answer's change, struck out
        page.screenshot(path=artifacts / "admin-faq-merge.png", full_page=True)

        page.get_by_label("Replace: the FAQ becomes exactly this file").check()
        page.wait_for_selector("#faq-diff >> text=27 removed")
        page.wait_for_selector("#faq-confirm", state="visible")
        page.click("#faq-build")  # the wrong click: Build before confirming
        page.wait_for_selector("#faq-build-status >> text=Not built: this removes 27 entries")
        assert kb.current_version == before
        page.get_by_label("Yes, remove these 27 entries").check()
        page.wait_for_selector("#faq-build-status >> text=Not built", state="detached")
        page.screenshot(path=artifacts / "admin-faq-replace-confirm.png", full_page=True)
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=artifacts / "admin-faq-replace.png")  # the top: the choice, the counts, the changes
        page.click("#faq-build")
        page.wait_for_selector("#faq-build-status >> text=is live with 5 entries")
        assert kb.current_version != before and len(kb.entries()) == 5

        page.get_by_role("tab", name="Model").click()
        page.wait_for_selector("#model-info >> text=What the figures mean")
        page.wait_for_timeout(300)
        page.screenshot(path=artifacts / "admin-model.png")

        page.reload()  # a reload starts over: nothing checked, nothing to confirm
        page.wait_for_selector("#faq-upload")
        assert page.locator("#faq-confirm").is_hidden() and page.locator("#faq-build").is_disabled()
    finally:
        context.close()
        kb.activate(before)

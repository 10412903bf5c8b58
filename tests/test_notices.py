"""The customer notices: one table per language, each complete, chosen by the conversation's language."""

from __future__ import annotations

import string

import pytest

from chatbot.notices import EN, TABLES, base_language, notice


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


@pytest.mark.parametrize("language", sorted(TABLES))
def test_every_table_has_every_kind_with_the_same_placeholders(language):
    table = TABLES[language]
    assert set(table) == set(EN), f"{language} lacks {set(EN) - set(table)} or has extra {set(table) - set(EN)}"
    for kind, text in table.items():
        assert text.strip() and placeholders(text) == placeholders(EN[kind]), (language, kind)


def test_the_issue_languages_are_all_there_and_differ_from_english():
    assert {"en", "es", "fr", "de", "zh"} <= set(TABLES)
    for language in ("es", "fr", "de", "zh"):
        assert all(TABLES[language][kind] != EN[kind] for kind in EN), language


@pytest.mark.parametrize(
    "language, expected",
    [("zh", "谢谢"), ("zh-cn", "谢谢"), ("zh_TW", "谢谢"), ("DE", "Danke"), ("fr", "Merci"), ("es", "Gracias")],
)
def test_the_conversation_language_picks_the_table(language, expected):
    assert expected in notice("hold", language)


@pytest.mark.parametrize("language", ["ja", "", None, "xx-yy"])
def test_languages_without_a_table_get_english(language):
    assert notice("handoff", language) == EN["handoff"]


def test_the_company_name_is_filled_in():
    assert "Acme's products" in notice("refuse", "en", "Acme")
    assert "Acme的产品" in notice("refuse", "zh", "Acme")


def test_an_unknown_kind_names_the_known_ones():
    with pytest.raises(KeyError, match="handoff, handoff_later, hold, refuse, resolved"):
        notice("goodbye", "en")


@pytest.mark.parametrize("raw, base", [("zh-CN", "zh"), ("pt_BR", "pt"), (" EN ", "en"), (None, "en"), ("", "en")])
def test_base_language(raw, base):
    assert base_language(raw) == base

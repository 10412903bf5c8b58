"""Fixed customer notices (hold, handoff, refusal), one table per language.

To add a language, write its table with every kind of `EN` (the same `{placeholders}`) and list it in `TABLES`;
`tests/test_notices.py` checks both. A kind missing from a table falls back to English.
"""

from __future__ import annotations

EN = {
    "hold": "Thanks! A member of our team will confirm the answer shortly.",
    "handoff": "I'm passing your question to a colleague; a person will reply here shortly.",
    "refuse": "I can only help with questions about {company}'s products, orders and services.",
}
ES = {
    "hold": "¡Gracias! Una persona de nuestro equipo confirmará la respuesta en breve.",
    "handoff": "Paso tu pregunta a un compañero; una persona te responderá aquí en breve.",
    "refuse": "Solo puedo ayudarte con preguntas sobre los productos, pedidos y servicios de {company}.",
}
FR = {
    "hold": "Merci ! Une personne de notre équipe va confirmer la réponse sous peu.",
    "handoff": "Je transmets votre question à un collègue ; une personne vous répondra ici sous peu.",
    "refuse": "Je ne peux répondre qu'aux questions sur les produits, les commandes et les services de {company}.",
}
DE = {
    "hold": "Danke! Jemand aus unserem Team bestätigt die Antwort in Kürze.",
    "handoff": "Ich gebe Ihre Frage an einen Kollegen weiter; eine Person antwortet Ihnen hier in Kürze.",
    "refuse": "Ich kann nur Fragen zu Produkten, Bestellungen und Dienstleistungen von {company} beantworten.",
}
ZH = {
    "hold": "谢谢！我们的工作人员会尽快确认答案。",
    "handoff": "我正在把您的问题转给同事，稍后会有工作人员在这里回复您。",
    "refuse": "我只能回答有关{company}的产品、订单和服务的问题。",
}

TABLES: dict[str, dict[str, str]] = {"en": EN, "es": ES, "fr": FR, "de": DE, "zh": ZH}
"""Language code (ISO 639-1) -> that language's notices."""


def base_language(language: str | None) -> str:
    """The primary language subtag, lower-cased: `zh-CN` -> `zh`, `pt_BR` -> `pt`, None -> `en`."""
    return (language or "en").replace("_", "-").split("-")[0].strip().lower() or "en"


def notice(kind: str, language: str | None, company: str = "") -> str:
    """The fixed customer notice `kind` in `language` (English when that language has no table or lacks the kind).

    Raises `KeyError` naming the known kinds for a kind English does not have either.
    """
    if kind not in EN:
        raise KeyError(f"unknown notice {kind!r}; the known ones are {', '.join(sorted(EN))}")
    table = TABLES.get(base_language(language), EN)
    return table.get(kind, EN[kind]).format(company=company)


"""Fixed customer notices (hold, handoff, refusal), one table per language.

To add a language, write its table with every kind of `EN` (the same `{placeholders}`) and list it in `TABLES`;
`tests/test_notices.py` checks both. A kind missing from a table falls back to English.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chatbot.config import BusinessHours

EN = {
    "greeting": "Hello! How can I help you today?",
    "thanks": "You're welcome! Is there anything else I can help you with?",
    "hold": "Thanks! A member of our team will confirm the answer shortly.",
    "handoff": "I'm passing your question to a colleague; a person will reply here shortly.",
    "refuse": "I can only help with questions about {company}'s products, orders and services.",
    "handoff_later": (
        "I'm passing your question to a colleague. Our team is away right now; a person will reply here from {when}."
    ),
    "handback": (
        "Our team has handed this chat back to the assistant: ask me anything, or press “Talk to a person” again."
    ),
    "resolved": (
        "Thank you for contacting us! This conversation is now closed; write again any time to start a new one."
    ),
}
ES = {
    "greeting": "¡Hola! ¿En qué puedo ayudarte hoy?",
    "thanks": "¡De nada! ¿Puedo ayudarte en algo más?",
    "hold": "¡Gracias! Una persona de nuestro equipo confirmará la respuesta en breve.",
    "handoff": "Paso tu pregunta a un compañero; una persona te responderá aquí en breve.",
    "refuse": "Solo puedo ayudarte con preguntas sobre los productos, pedidos y servicios de {company}.",
    "handoff_later": (
        "Paso tu pregunta a un compañero. Nuestro equipo no está disponible ahora; una persona te "
        "responderá aquí a partir del {when}."
    ),
    "handback": (
        "Nuestro equipo ha devuelto este chat al asistente: pregúntame lo que quieras o pide de nuevo "
        "hablar con una persona."
    ),
    "resolved": (
        "¡Gracias por contactarnos! Esta conversación está cerrada; escríbenos cuando quieras para empezar una nueva."
    ),
}
FR = {
    "greeting": "Bonjour ! Comment puis-je vous aider aujourd'hui ?",
    "thanks": "Avec plaisir ! Puis-je vous aider pour autre chose ?",
    "hold": "Merci ! Une personne de notre équipe va confirmer la réponse sous peu.",
    "handoff": "Je transmets votre question à un collègue ; une personne vous répondra ici sous peu.",
    "refuse": "Je ne peux répondre qu'aux questions sur les produits, les commandes et les services de {company}.",
    "handoff_later": (
        "Je transmets votre question à un collègue. Notre équipe est absente pour le moment ; une personne "
        "vous répondra ici à partir du {when}."
    ),
    "handback": (
        "Notre équipe a rendu cette conversation à l'assistant : posez-moi vos questions, ou demandez de "
        "nouveau à parler à une personne."
    ),
    "resolved": (
        "Merci de nous avoir contactés ! Cette conversation est terminée ; écrivez-nous quand vous voulez "
        "pour en commencer une nouvelle."
    ),
}
DE = {
    "greeting": "Hallo! Wie kann ich Ihnen heute helfen?",
    "thanks": "Gern geschehen! Kann ich Ihnen noch bei etwas anderem helfen?",
    "hold": "Danke! Jemand aus unserem Team bestätigt die Antwort in Kürze.",
    "handoff": "Ich gebe Ihre Frage an einen Kollegen weiter; eine Person antwortet Ihnen hier in Kürze.",
    "refuse": "Ich kann nur Fragen zu Produkten, Bestellungen und Dienstleistungen von {company} beantworten.",
    "handoff_later": (
        "Ich gebe Ihre Frage an einen Kollegen weiter. Unser Team ist gerade nicht da; eine Person "
        "antwortet Ihnen hier ab {when}."
    ),
    "handback": (
        "Unser Team hat diesen Chat an den Assistenten zurückgegeben: Fragen Sie mich, oder bitten Sie "
        "erneut um eine Person."
    ),
    "resolved": (
        "Danke, dass Sie uns kontaktiert haben! Dieses Gespräch ist abgeschlossen; schreiben Sie jederzeit "
        "erneut, um ein neues zu beginnen."
    ),
}
ZH = {
    "greeting": "您好！请问今天有什么可以帮您？",
    "thanks": "不客气！还有什么可以帮您的吗？",
    "hold": "谢谢！我们的工作人员会尽快确认答案。",
    "handoff": "我正在把您的问题转给同事，稍后会有工作人员在这里回复您。",
    "refuse": "我只能回答有关{company}的产品、订单和服务的问题。",
    "handoff_later": "我正在把您的问题转给同事。我们的团队现在不在线，{when} 起会有工作人员在这里回复您。",
    "handback": "我们的团队已将此对话交回给助手：您可以继续向我提问，或再次要求联系人工客服。",
    "resolved": "感谢您联系我们！本次对话已结束；如需帮助，欢迎随时再次留言开始新的对话。",
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


def handoff_notice(language: str | None, hours: BusinessHours | None = None, now: dt.datetime | None = None) -> str:
    """The handoff notice; outside business `hours` it says when a person will answer ("2026-12-07 09:00 (UTC)")."""
    opening = hours.next_opening(now or dt.datetime.now(dt.UTC)) if hours is not None else None
    if opening is None:
        return notice("handoff", language)
    when = f"{opening:%Y-%m-%d %H:%M} ({hours.timezone})"
    table = TABLES.get(base_language(language), EN)
    return table.get("handoff_later", EN["handoff_later"]).format(when=when)

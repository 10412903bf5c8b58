"""Fixed customer notices (hold, handoff, refusal) in the languages that have a translation."""

from __future__ import annotations

NOTICES = {
    "hold": {
        "en": "Thanks! A member of our team will confirm the answer shortly.",
        "es": "¡Gracias! Una persona de nuestro equipo confirmará la respuesta en breve.",
        "fr": "Merci ! Une personne de notre équipe va confirmer la réponse sous peu.",
        "de": "Danke! Jemand aus unserem Team bestätigt die Antwort in Kürze.",
    },
    "handoff": {
        "en": "I'm passing your question to a colleague; a person will reply here shortly.",
        "es": "Paso tu pregunta a un compañero; una persona te responderá aquí en breve.",
        "fr": "Je transmets votre question à un collègue ; une personne vous répondra ici sous peu.",
        "de": "Ich gebe Ihre Frage an einen Kollegen weiter; eine Person antwortet Ihnen hier in Kürze.",
    },
    "refuse": {
        "en": "I can only help with questions about {company}'s products, orders and services.",
    },
}


def notice(kind: str, language: str, company: str = "") -> str:
    """A fixed customer notice in `language` (English when there is no translation)."""
    table = NOTICES[kind]
    return table.get(language, table["en"]).format(company=company)

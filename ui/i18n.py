"""The customer pages' fixed texts (buttons, labels, hints), one table per language.

To add a language, write its table with every key of `EN` (the same `{placeholders}`) and list it in `TABLES`;
`tests/test_ui_customer.py` checks both. The customer's notices (hold, handoff, ...) are in `chatbot.notices`.
"""

from __future__ import annotations

from chatbot.notices import base_language

EN = {
    "title": "{company} support",
    "intro": "Ask a question about orders, delivery, payments or your account.",
    "chat": "Chat",
    "empty": "Type your question below.",
    "message": "Your message",
    "placeholder": "Type your message… (Enter sends, Esc stops)",
    "send": "Send",
    "stop": "Stop",
    "person": "Talk to a person",
    "new": "New conversation",
    "team": "Support team",
    "stopped": "(stopped)",
    "source": "Source: {question}",
    "arrived": "New reply from our support team",
    "thanks": "Thanks for the feedback!",
    "not_rated": "Only answers from the bot and the team can be rated.",
    "not_sent": "Message not sent",
    "failed": "Something went wrong on our side; please send your message again.",
    "open_chat": "Chat with us",
    "close_chat": "Close the chat",
    "refused_empty": "The message is empty; type your question.",
    "refused_too_long": "The message is too long (at most {limit} characters); please shorten it.",
    "refused_text": "The message could not be read as text; please type it again.",
    "refused_closed": "This conversation is closed; press “New conversation” to start another.",
}
ES = {
    "title": "Atención al cliente de {company}",
    "intro": "Pregunta sobre pedidos, envíos, pagos o tu cuenta.",
    "chat": "Chat",
    "empty": "Escribe tu pregunta abajo.",
    "message": "Tu mensaje",
    "placeholder": "Escribe tu mensaje… (Intro envía, Esc detiene)",
    "send": "Enviar",
    "stop": "Detener",
    "person": "Hablar con una persona",
    "new": "Nueva conversación",
    "team": "Equipo de atención",
    "stopped": "(detenido)",
    "source": "Fuente: {question}",
    "arrived": "Nueva respuesta de nuestro equipo",
    "thanks": "¡Gracias por tu opinión!",
    "not_rated": "Solo se pueden valorar las respuestas del bot y del equipo.",
    "not_sent": "Mensaje no enviado",
    "failed": "Algo ha fallado por nuestra parte; vuelve a enviar tu mensaje.",
    "open_chat": "Chatea con nosotros",
    "close_chat": "Cerrar el chat",
    "refused_empty": "El mensaje está vacío; escribe tu pregunta.",
    "refused_too_long": "El mensaje es demasiado largo (como máximo {limit} caracteres); acórtalo, por favor.",
    "refused_text": "No se ha podido leer el mensaje como texto; escríbelo de nuevo, por favor.",
    "refused_closed": "Esta conversación está cerrada; pulsa «Nueva conversación» para empezar otra.",
}
FR = {
    "title": "Service client {company}",
    "intro": "Posez une question sur les commandes, la livraison, les paiements ou votre compte.",
    "chat": "Discussion",
    "empty": "Écrivez votre question ci-dessous.",
    "message": "Votre message",
    "placeholder": "Écrivez votre message… (Entrée envoie, Échap arrête)",
    "send": "Envoyer",
    "stop": "Arrêter",
    "person": "Parler à une personne",
    "new": "Nouvelle conversation",
    "team": "Service client",
    "stopped": "(arrêté)",
    "source": "Source : {question}",
    "arrived": "Nouvelle réponse de notre équipe",
    "thanks": "Merci pour votre avis !",
    "not_rated": "Seules les réponses du bot et de l'équipe peuvent être notées.",
    "not_sent": "Message non envoyé",
    "failed": "Un problème est survenu de notre côté ; renvoyez votre message.",
    "open_chat": "Discuter avec nous",
    "close_chat": "Fermer la discussion",
    "refused_empty": "Le message est vide ; écrivez votre question.",
    "refused_too_long": "Le message est trop long ({limit} caractères au plus) ; raccourcissez-le, s'il vous plaît.",
    "refused_text": "Le message n'a pas pu être lu comme du texte ; écrivez-le de nouveau, s'il vous plaît.",
    "refused_closed": "Cette conversation est terminée ; cliquez sur « Nouvelle conversation » pour en commencer une.",
}
DE = {
    "title": "{company} Kundenservice",
    "intro": "Fragen Sie zu Bestellungen, Lieferung, Zahlungen oder Ihrem Konto.",
    "chat": "Chat",
    "empty": "Schreiben Sie Ihre Frage unten.",
    "message": "Ihre Nachricht",
    "placeholder": "Ihre Nachricht… (Enter sendet, Esc stoppt)",
    "send": "Senden",
    "stop": "Stopp",
    "person": "Mit einer Person sprechen",
    "new": "Neues Gespräch",
    "team": "Kundenservice",
    "stopped": "(gestoppt)",
    "source": "Quelle: {question}",
    "arrived": "Neue Antwort von unserem Team",
    "thanks": "Danke für Ihr Feedback!",
    "not_rated": "Nur Antworten des Bots und des Teams können bewertet werden.",
    "not_sent": "Nachricht nicht gesendet",
    "failed": "Bei uns ist etwas schiefgegangen; bitte senden Sie Ihre Nachricht erneut.",
    "open_chat": "Mit uns chatten",
    "close_chat": "Chat schließen",
    "refused_empty": "Die Nachricht ist leer; bitte schreiben Sie Ihre Frage.",
    "refused_too_long": "Die Nachricht ist zu lang (höchstens {limit} Zeichen); bitte kürzen Sie sie.",
    "refused_text": "Die Nachricht konnte nicht als Text gelesen werden; bitte schreiben Sie sie erneut.",
    "refused_closed": "Dieses Gespräch ist beendet; klicken Sie auf „Neues Gespräch“, um ein neues zu beginnen.",
}
ZH = {
    "title": "{company} 客服",
    "intro": "有关订单、配送、付款或账户的问题，请在这里提问。",
    "chat": "对话",
    "empty": "请在下方输入您的问题。",
    "message": "您的消息",
    "placeholder": "输入您的消息…（回车发送，Esc 停止）",
    "send": "发送",
    "stop": "停止",
    "person": "联系人工客服",
    "new": "新对话",
    "team": "客服团队",
    "stopped": "（已停止）",
    "source": "来源：{question}",
    "arrived": "客服团队发来了新回复",
    "thanks": "感谢您的反馈！",
    "not_rated": "只能评价机器人和客服团队的回答。",
    "not_sent": "消息未发送",
    "failed": "我们这边出了点问题，请重新发送您的消息。",
    "open_chat": "在线咨询",
    "close_chat": "关闭对话",
    "refused_empty": "消息是空的，请输入您的问题。",
    "refused_too_long": "消息太长了（最多 {limit} 个字符），请缩短后再发送。",
    "refused_text": "无法识别这条消息的文字，请重新输入。",
    "refused_closed": "本次对话已结束，请点击“新对话”开始新的对话。",
}

TABLES: dict[str, dict[str, str]] = {"en": EN, "es": ES, "fr": FR, "de": DE, "zh": ZH}
"""Language code (ISO 639-1) -> that language's page texts."""


def supported(language: str | None) -> str | None:
    """`language`'s code when the pages have a table for it (`zh-CN` -> `zh`), else None."""
    code = base_language(language) if language else None
    return code if code in TABLES else None


def from_accept_language(header: str | None) -> str | None:
    """The first language of an `Accept-Language` header the pages speak (`fr-CH, de;q=0.8` -> `fr`), by weight."""
    ranked = []
    for position, part in enumerate((header or "").split(",")):
        tag, _, params = part.strip().partition(";")
        weight = 1.0
        if params.strip().startswith("q="):
            try:
                weight = float(params.strip()[2:])
            except ValueError:
                weight = 0.0
        if tag and weight > 0:
            ranked.append((-weight, position, tag))
    return next((code for *_, tag in sorted(ranked) if (code := supported(tag))), None)


def page_language(conversation: str | None = None, asked: str | None = None, accept: str | None = None) -> str:
    """The pages' language: the conversation's, else the one `?lang=` asked for, else the browser's
    (`Accept-Language`), else English; each only when the pages have a table for it."""
    return supported(conversation) or supported(asked) or from_accept_language(accept) or "en"


REFUSED = {"empty": "refused_empty", "too_long": "refused_too_long", "binary": "refused_text",
           "encoding": "refused_text", "closed_conversation": "refused_closed"}  # fmt: skip
"""`chatbot.engine.InputError.code` -> the page text that tells the customer what to do."""


def text(key: str, language: str | None, **fields: str) -> str:
    """The page text `key` in `language` (English when that language has no table or lacks the key)."""
    table = TABLES.get(supported(language) or "en", EN)
    return table.get(key, EN[key]).format(**fields)

"""Regenerate `store_faq.jsonl` from the Bitext customer-support CSV (see ATTRIBUTION.md).

    python -m knowledge_base.demo.make_store_faq ../shared/data/bitext_customer_support/<file>.csv

One entry per Bitext intent: a question and answer written for the fictional Example Store, 12 real customer
phrasings of the intent as `alt_questions` (picked deterministically: no placeholders, distinct, spread over the
intent's rows), a few hand-written phrasings (`EXTRA`)
and the dataset's category. A few Spanish entries follow so language-aware ranking has something
to show.
"""

from __future__ import annotations

import csv
import hashlib
import json
import sys
from pathlib import Path

N_PHRASINGS = 12
N_QUERIES = 20

# intent -> (question, answer). Concrete facts so a grounding check downstream has something to check.
ANSWERS: dict[str, tuple[str, str]] = {
    "cancel_order": (
        "How do I cancel my order?",
        "You can cancel an order free of charge until it ships: open My Orders, pick the order and press "
        "Cancel order. Once it has shipped, refuse the delivery or return it within 30 days instead.",
    ),
    "change_order": (
        "How can I change an order I already placed?",
        "Orders can be changed for 2 hours after you place them: open My Orders, pick the order and "
        "press Edit. After 2 hours, cancel it and place a new one.",
    ),
    "place_order": (
        "How do I place an order?",
        "Add the items to your cart, press Checkout, enter your shipping address and payment, then press "
        "Place order. You get a confirmation e-mail with your order number within 5 minutes.",
    ),
    "track_order": (
        "How can I track my order?",
        "Open My Orders and press Track next to the order, or use the tracking link in your shipping "
        "e-mail. Tracking appears within 24 hours of shipping.",
    ),
    "check_cancellation_fee": (
        "Is there a fee for cancelling?",
        "Cancelling an order before it ships is free. Cancelling an annual membership early "
        "costs a fee of 10% of the remaining months.",
    ),
    "check_invoice": (
        "Where can I see my invoices?",
        "All invoices are under Account > Invoices, listed by date for the last 7 years; each one can "
        "be viewed online.",
    ),
    "get_invoice": (
        "How do I get an invoice for my purchase?",
        "Open Account > Invoices and press Download PDF next to the order. Invoices are issued the day "
        "the order ships. For a company invoice with a VAT number, write to billing@example-store.com.",
    ),
    "check_payment_methods": (
        "Which payment methods do you accept?",
        "We accept Visa, Mastercard, American Express, PayPal, Apple Pay and bank transfer. "
        "Cash on delivery is not available.",
    ),
    "payment_issue": (
        "I have a problem with my payment",
        "If a payment fails, check the card details and your bank's limit, then retry in My Orders. "
        "If you were charged twice, the duplicate is released within 5 business days; otherwise write "
        "to billing@example-store.com with the order number.",
    ),
    "check_refund_policy": (
        "What is your refund policy?",
        "You can return any unused item within 30 days of delivery. We refund the full price to "
        "the original payment method within 14 days of receiving the return.",
    ),
    "get_refund": (
        "How do I get a refund?",
        "Start a return in My Orders > Return item, print the free return label and send the item back "
        "within 30 days. The refund reaches your original payment method within 14 days of our receiving "
        "it.",
    ),
    "track_refund": (
        "What is the status of my refund?",
        "Refunds are issued within 14 days of our receiving your return; the status is shown under My "
        "Orders > Returns. Banks take a further 3-5 business days to show the money.",
    ),
    "delivery_options": (
        "What delivery options do you offer?",
        "Standard delivery takes 3-5 business days and is free over $50 (otherwise $4.99). Express "
        "delivery takes 1-2 business days for $12.99. Pick-up points are free.",
    ),
    "delivery_period": (
        "How long does delivery take?",
        "Standard delivery takes 3-5 business days, express 1-2 business days, counted from the day "
        "the order ships. Orders placed before 2 pm ship the same day.",
    ),
    "change_shipping_address": (
        "How do I change the shipping address of my order?",
        "You can change the address in My Orders > Edit until the order ships. After it "
        "ships, contact support@example-store.com and we will try to redirect it.",
    ),
    "set_up_shipping_address": (
        "How do I add a shipping address?",
        "Go to Account > Addresses, press Add address, fill in the form and press Save. You "
        "can keep up to 10 addresses and mark one as default.",
    ),
    "create_account": (
        "How do I create an account?",
        "Press Sign up at the top of any page, enter your e-mail address and a password of at least 8 "
        "characters, then confirm the link we e-mail you within 24 hours.",
    ),
    "delete_account": (
        "How do I delete my account?",
        "Go to Account > Privacy and press Delete account. We erase your data within 30 days; invoices "
        "are kept for 7 years as the law requires.",
    ),
    "edit_account": (
        "How do I change my account details?",
        "Go to Account > Profile to change your name, e-mail address or phone number, then press Save. "
        "A change of e-mail address must be confirmed through the link we send to the new address.",
    ),
    "switch_account": (
        "How do I switch to another account?",
        "Press your name at the top right, choose Sign out, then sign in with the other account. You "
        "can also use Switch account in the same menu to change between saved accounts.",
    ),
    "recover_password": (
        "I forgot my password",
        "Press Forgot password on the sign-in page and enter your e-mail address. We send a reset "
        "link that works for 1 hour. Check your spam folder if it does not arrive.",
    ),
    "registration_problems": (
        "I can't sign up",
        "Sign-up fails most often because the e-mail address already has an account (use "
        "Forgot password) or the password is shorter than 8 characters. If it still fails, "
        "write to support@example-store.com.",
    ),
    "contact_customer_service": (
        "How can I contact customer service?",
        "Write to support@example-store.com or call +1 555 0100, Monday to Friday 9 am-6 pm "
        "(Eastern time). We answer e-mails within 24 hours.",
    ),
    "contact_human_agent": (
        "I want to talk to a person",
        "You can ask for a person in this chat at any time and an agent takes over, Monday to "
        "Friday 9 am-6 pm (Eastern time); or call +1 555 0100.",
    ),
    "complaint": (
        "I want to make a complaint",
        "We are sorry. Write to complaints@example-store.com with your order number and what happened; a "
        "manager replies within 2 business days.",
    ),
    "review": (
        "How can I leave a review?",
        "Open My Orders, pick the order and press Write a review. Reviews are published within 48 hours once "
        "they pass moderation.",
    ),
    "newsletter_subscription": (
        "How do I subscribe to or unsubscribe from the newsletter?",
        "Tick or untick Newsletter under Account > Notifications, or press Unsubscribe at the "
        "bottom of any newsletter. We send it once a week.",
    ),
}

# A few phrasings written by this project, for wordings the Bitext rows lack ("parcel", "package", "money back").
EXTRA: dict[str, list[str]] = {
    "track_order": ["where is my package?", "my parcel never arrived, where is it?", "has my order shipped yet?"],
    "delivery_period": ["when will my order arrive?", "how many days until my package gets here?"],
    "get_refund": ["I want my money back", "can I get a refund for an item I returned?"],
    "track_refund": ["I returned an item and still have not received my money"],
    "contact_human_agent": ["can I speak to a real person?", "transfer me to an agent"],
    "check_payment_methods": ["can I pay with PayPal?", "do you take credit cards?"],
    "delivery_options": ["do you offer express shipping?", "how much does shipping cost?"],
}

SPANISH = [
    {
        "id": "es_get_refund",
        "question": "¿Cómo obtengo un reembolso?",
        "language": "es",
        "category": "REFUND",
        "alt_questions": [
            "quiero que me devuelvan el dinero",
            "necesito un reembolso de mi pedido",
            "¿cómo pido la devolución del dinero?",
        ],
        "answer": "Inicia una devolución en Mis pedidos > Devolver artículo y envíalo en un plazo de 30 días. El "
        "reembolso llega a tu método de pago original en 14 días desde que lo recibimos.",
    },
    {
        "id": "es_cancel_order",
        "question": "¿Cómo cancelo mi pedido?",
        "language": "es",
        "category": "ORDER",
        "alt_questions": ["quiero cancelar mi pedido", "necesito anular una compra", "¿puedo cancelar la orden?"],
        "answer": "Puedes cancelar gratis hasta que el pedido salga: abre Mis pedidos, elige el pedido y pulsa "
        "Cancelar pedido.",
    },
    {
        "id": "es_contact",
        "question": "¿Cómo contacto con atención al cliente?",
        "language": "es",
        "category": "CONTACT",
        "alt_questions": [
            "quiero hablar con una persona",
            "¿cuál es el correo de soporte?",
            "necesito ayuda de un agente",
        ],
        "answer": "Escribe a support@example-store.com o llama al +1 555 0100, de lunes a viernes de 9 a 18 h.",
    },
    {
        "id": "es_delivery_period",
        "question": "¿Cuánto tarda el envío?",
        "language": "es",
        "category": "DELIVERY",
        "alt_questions": ["¿cuándo llega mi pedido?", "¿cuántos días tarda la entrega?"],
        "answer": "El envío estándar tarda de 3 a 5 días hábiles y el exprés de 1 a 2 días hábiles.",
    },
]


def main(csv_path: str) -> None:
    with open(csv_path, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    by_intent: dict[str, list[str]] = {}
    category: dict[str, str] = {}
    for row in rows:
        by_intent.setdefault(row["intent"], []).append(row["instruction"].strip())
        category[row["intent"]] = row["category"]
    out = []
    for intent in sorted(by_intent):
        question, answer = ANSWERS[intent]
        seen = {question.lower()}
        pool = sorted(set(by_intent[intent]), key=lambda t: hashlib.sha1(t.encode()).hexdigest())
        alts = []
        for text in pool:
            if "{{" in text or len(text) > 120 or text.lower() in seen:
                continue
            seen.add(text.lower())
            alts.append(text)
            if len(alts) == N_PHRASINGS:
                break
        alts += EXTRA.get(intent, [])
        out.append(
            {
                "id": intent,
                "question": question,
                "answer": answer,
                "alt_questions": alts,
                "language": "en",
                "category": category[intent],
            }
        )
    out.extend(SPANISH)
    target = Path(__file__).with_name("store_faq.jsonl")
    # Held-out phrasings (never in alt_questions) as labelled queries, plus CLINC150's out-of-scope validation rows.
    used = {t for e in out for t in e["alt_questions"]}
    queries = []
    for intent in sorted(by_intent):
        pool = sorted(set(by_intent[intent]) - used, key=lambda t: hashlib.sha1(t.encode()).hexdigest())
        queries += [{"query": t, "faq_id": intent} for t in pool if "{{" not in t][:N_QUERIES]
    clinc = Path(csv_path).parents[1] / "clinc150" / "data_full_trainval.json"
    if clinc.exists():
        queries += [{"query": t, "faq_id": None} for t, _ in json.loads(clinc.read_text())["oos_val"]]
    with open(target.with_name("store_queries.jsonl"), "w", encoding="utf-8") as f:
        for q in queries:
            f.write(json.dumps(q, ensure_ascii=False) + "\n")
    with open(target, "w", encoding="utf-8") as f:
        for entry in out:
            f.write(json.dumps(entry, ensure_ascii=False) + "\n")
    print(f"wrote {len(out)} entries to {target}")


if __name__ == "__main__":
    main(
        sys.argv[1]
        if len(sys.argv) > 1
        else "../shared/data/bitext_customer_support/Bitext_Sample_Customer_Support_Training_Dataset.csv"
    )

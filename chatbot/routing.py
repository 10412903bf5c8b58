"""Routing policy, grounding check and prompt-injection defence.

- `asks_for_human`: "agent", "human", "talk to a person" and their equivalents in several languages.
- `decide_route`: ANSWER / DRAFT / HANDOFF from the calibrated top score, the thresholds and the deployment mode.
- `extract_facts` (from `chatbot.claims`, which checks every claim of a reply) / `FactGate`: numbers, prices, URLs,
  e-mail addresses and durations in a reply must appear in the sources (or the customer's own words); the gate holds
  back streamed text containing such tokens until checked.
- `looks_like_injection` / `leaks_prompt`: common override phrasings in customer text, and replies that repeat
  the system prompt.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from chatbot.claims import FACT_HINT, NUMBER_WORDS, extract_facts
from chatbot.config import RoutingConfig
from chatbot.records import Route
from knowledge_base.config import KBConfig
from knowledge_base.records import Hit
from knowledge_base.text import HAN_RUN as _HAN_RUN

HUMAN_PHRASES = (
    # English
    "agent", "human", "a person", "real person", "live person", "talk to someone", "speak to someone",
    "representative", "operator", "customer service rep", "live chat", "someone real", "speak with someone",
    # French
    "un humain", "une personne", "un conseiller", "une conseillère", "un agent", "un opérateur",
    "parler à quelqu'un",
    # German
    "mitarbeiter", "einen menschen", "mensch sprechen", "berater", "echte person", "sachbearbeiter",
    # Spanish / Portuguese / Italian
    "un humano", "una persona", "un agente", "hablar con alguien", "asesor", "operador", "atendente",
    "um humano", "uma pessoa", "un operatore", "un essere umano", "parlare con qualcuno",
    # Dutch
    "een mens", "medewerker", "een persoon",
    # CJK and others
    "人工", "客服", "真人", "担当者", "オペレーター", "상담원", "사람과", "оператор", "человек",
)  # fmt: skip

# Customer text that tries to overrule the system prompt or extract it.
INJECTION_PATTERNS = tuple(
    re.compile(p, re.IGNORECASE)
    for p in (
        r"\b(ignore|disregard|forget|override|bypass)\b.{0,40}\b(previous|prior|above|earlier|all|your|the|system)\b"
        r".{0,30}\b(instructions?|prompts?|rules?|directions?|guidelines?|context)\b",
        r"\b(reveal|show|print|repeat|display|output|leak|tell me|what (is|are)|give me)\b.{0,40}"
        r"\b(system prompt|your ((hidden|secret|initial|original) )?(instructions|prompt|rules|guidelines)|"
        r"initial prompt|hidden (prompt|instructions)|"
        r"the (text|words) above)\b",
        r"\byou are now\b|\bfrom now on,? you\b|\bpretend (to be|you are)\b|\bact as (an?|the)\b",
        r"\b(developer|dan|god|jailbreak|debug) mode\b|\bjailbreak\b|\bDAN\b",
        r"\bnew (instructions|rules|system prompt)\b|\bsystem\s*:\s|<\|?system\|?>|\[\s*system\s*\]",
        r"\bignore (everything|all)\b",
        r"\b(ignorez|ignoriere|ignora|ignorar|oublie[sz]?)\b.{0,40}\b(instructions?|anweisungen|instrucciones|"
        r"istruzioni|instruções|regeln|règles)\b",
    )
)

_NUMBER_TAIL = re.compile(r"\d[\d.,:-]*$|\b(" + "|".join(NUMBER_WORDS) + r")$", re.IGNORECASE)


def _normal(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def asks_for_human(text: str, extra: Iterable[str] = ()) -> bool:
    """Whether the customer asks for a person ("agent", "human", "talk to a person", "un conseiller", "人工" ...)."""
    norm = _normal(text)
    for phrase in (*HUMAN_PHRASES, *extra):
        p = _normal(phrase)
        if not p:
            continue
        if p.isascii():
            if re.search(r"(?<!\w)" + re.escape(p) + r"s?(?!\w)", norm):
                return True
        elif p in norm:
            return True
    return False


# Messages that are only a greeting or thanks (with fillers): the bot answers them itself, never a handoff.
_SMALL_TALK = {
    "greeting": (
        "hi", "hello", "hey", "hiya", "good morning", "good afternoon", "good evening", "hola", "buenos días",
        "buenas tardes", "buenas", "bonjour", "bonsoir", "salut", "hallo", "guten tag", "guten morgen", "moin",
        "servus", "你好", "您好", "嗨",
    ),
    "thanks": (
        "thanks", "thank you", "thankyou", "thx", "ty", "cheers", "many thanks", "thanks a lot", "gracias",
        "muchas gracias", "merci", "merci beaucoup", "danke", "danke schön", "vielen dank", "谢谢", "多谢", "感谢",
    ),
}  # fmt: skip
_FILLERS = frozenset((
    "ok", "okay", "great", "perfect", "cool", "nice", "so", "very", "much", "a", "lot", "lots", "again", "there",
    "all", "everyone", "team", "that", "s", "it", "helps", "helped", "helpful", "got", "understood", "super", "good",
    "fine", "awesome",
))  # fmt: skip


def small_talk(text: str) -> str | None:
    """`greeting` or `thanks` when the message is only that ("hi!", "ok thanks a lot", "merci beaucoup", "谢谢"),
    else None."""
    norm = _normal(text)
    kind = None
    for name, phrases in _SMALL_TALK.items():
        for phrase in sorted(phrases, key=len, reverse=True):
            pattern = re.escape(phrase) if not phrase.isascii() else r"(?<!\w)" + re.escape(phrase) + r"(?!\w)"
            if re.search(pattern, norm):
                kind = kind or name
                norm = re.sub(pattern, " ", norm)
    if kind is None:
        return None
    rest = [w for w in re.findall(r"\w+", norm) if w not in _FILLERS]
    return kind if not rest else None


def looks_like_injection(text: str) -> bool:
    """Whether customer text tries to override the system prompt or extract it (common phrasings)."""
    norm = _normal(text)
    return any(p.search(norm) for p in INJECTION_PATTERNS)


def leaks_prompt(reply: str, system_prompt: str, window: int = 6) -> bool:
    """Whether `reply` repeats any run of `window` consecutive words of the system prompt (in Chinese, which has no
    spaces, any `2 * window` consecutive characters)."""
    words = re.findall(r"\w+", _normal(system_prompt))
    reply_words = " ".join(re.findall(r"\w+", _normal(reply)))
    grams = {" ".join(words[i : i + window]) for i in range(len(words) - window + 1)}
    if any(g in reply_words for g in grams):
        return True
    reply_han = "|".join(_HAN_RUN.findall(_normal(reply)))
    size = 2 * window
    return any(run[i : i + size] in reply_han for run in _HAN_RUN.findall(_normal(system_prompt))
               for i in range(len(run) - size + 1))  # fmt: skip


def supported_facts(texts: Iterable[str]) -> set[str]:
    """Facts the reply may state: everything in the sources and the customer's own words. Phone numbers and
    ranges are also allowed piecewise (`555 0100` -> `555`, `0100`)."""
    facts: set[str] = set()
    for text in texts:
        facts |= extract_facts(text)
    return facts


@dataclass(frozen=True)
class GroundingResult:
    ok: bool
    unsupported: tuple[str, ...] = ()


def check_grounding(reply: str, allowed: set[str]) -> GroundingResult:
    """Every fact of `reply` must be in `allowed` (from `supported_facts`)."""
    missing = sorted(extract_facts(reply) - allowed)
    return GroundingResult(not missing, tuple(missing))


class FactGate:
    """Streams text while holding back anything that could be an unchecked fact.

    `feed(piece)` returns the text now safe to show: the complete words so far (a word still growing is held, and a
    number is held until the word after it, its unit, is complete), once the facts in them are all supported. When
    an unsupported fact completes, `failed` is set and nothing more is released.
    """

    def __init__(self, allowed: set[str]):
        self.allowed = allowed
        self.text = ""
        self.released = 0
        self.failed = False
        self.unsupported: tuple[str, ...] = ()

    def _release(self, upto: int) -> str:
        chunk = self.text[self.released : upto]
        if FACT_HINT.search(chunk):
            # check the complete words of the whole reply so far (a fact may span pieces)
            result = check_grounding(self.text[:upto], self.allowed)
            if not result.ok:
                self.failed, self.unsupported = True, result.unsupported
                return ""
        self.released = upto
        return chunk

    def feed(self, piece: str) -> str:
        if self.failed:
            return ""
        self.text += piece
        # Only complete words go out: a word still growing may turn into a fact ("www" -> "www.acme.com").
        boundary = max(self.text.rfind(" "), self.text.rfind("\n"))
        # A number waits for the next word: "5" may turn out to be "5 minutes", a duration checked with its unit.
        words = list(re.finditer(r"\S+", self.text[: max(boundary, 0)]))
        if words and _NUMBER_TAIL.search(words[-1].group()):
            boundary = words[-1].start() - 1
        if boundary <= self.released:
            return ""
        return self._release(boundary)

    def finish(self) -> str:
        """The rest at the end of generation, if it passes."""
        return "" if self.failed else self._release(len(self.text))


@dataclass(frozen=True)
class RouteDecision:
    route: Route
    reason: str


def decide_route(hits: Sequence[Hit], kb: KBConfig, routing: RoutingConfig, asked_for_human: bool = False
                 ) -> RouteDecision:  # fmt: skip
    """ANSWER when the top score reaches `kb.answer_threshold`, DRAFT from `kb.draft_threshold`, else HANDOFF;
    a request for a person always hands off. Mode `draft_only` turns ANSWER into DRAFT; `off` hands off all."""
    if routing.mode == "off":
        return RouteDecision("handoff", "routing.mode = off: agents answer every message")
    if asked_for_human:
        return RouteDecision("handoff", "the customer asked for a person")
    top = hits[0].score if hits else 0.0
    if top >= kb.answer_threshold:
        decision = RouteDecision("answer", f"score {top:.2f} >= answer_threshold {kb.answer_threshold:.2f}")
    elif top >= kb.draft_threshold:
        decision = RouteDecision("draft", f"score {top:.2f} >= draft_threshold {kb.draft_threshold:.2f}")
    else:
        return RouteDecision("handoff", f"no good source (best score {top:.2f} < {kb.draft_threshold:.2f})")
    if routing.mode == "draft_only" and decision.route == "answer":
        return RouteDecision("draft", "routing.mode = draft_only: " + decision.reason)
    return decision

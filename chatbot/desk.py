"""The support desk: conversation states, assignment and the review rules, over the store.

A conversation is in one of four states, derived from what is stored:

- `bot`: the bot answers it;
- `waiting`: it waits for a person (handed off and nobody assigned, or a draft waits for review);
- `with_agent`: an agent is assigned; the bot stays silent;
- `resolved`: an agent closed it (the customer got a closing notice).

Review acts only on the draft the agent has on screen: approve, edit and reject name the draft *and* the version
shown (`Draft.version`), and anything else is refused with the reason. The agent console and the HTTP API call this
service, never the store's desk methods directly.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal

from chatbot.autonomy import Autonomy
from chatbot.notices import notice
from chatbot.store import Draft, Message, NotFoundError, StoreError

State = Literal["bot", "waiting", "with_agent", "resolved"]
STATES: tuple[State, ...] = ("waiting", "with_agent", "bot", "resolved")
STATE_LABELS: dict[State, str] = {
    "bot": "with the bot",
    "waiting": "waiting for a person",
    "with_agent": "with an agent",
    "resolved": "resolved",
}


class DeskError(StoreError):
    """A desk action that cannot be done; the message says why and what to do instead."""


class StaleDraftError(DeskError):
    """The draft changed since the agent opened it (another agent reviewed it): nothing was sent."""


@dataclass(frozen=True)
class InboxItem:
    """One conversation as the inbox lists it."""

    conversation_id: str
    state: State
    customer_text: str
    """The customer's newest message."""
    customer_at: float
    last_at: float
    """When anything was last written in the conversation."""
    unread: bool
    """The customer wrote after an agent last opened the conversation."""
    assignee: str | None
    language: str | None
    draft_id: int | None
    """The oldest draft waiting for review, if any."""


@dataclass(frozen=True)
class ConversationView:
    """The selected conversation: its messages, state, assignee, the draft to review and who is typing."""

    conversation_id: str
    state: State
    assignee: str | None
    language: str | None
    messages: tuple[Message, ...]
    draft: Draft | None
    """The oldest pending draft, with the conversation up to its question as `context`."""
    typing: tuple[str, ...]
    """Other agents typing in this conversation right now."""

    @property
    def signature(self) -> tuple[Any, ...]:
        """Changes whenever what the pane shows changes (for live updates that redraw only then)."""
        last = self.messages[-1].id if self.messages else 0
        return (self.conversation_id, self.state, self.assignee, last, self.draft.version if self.draft else None,
                self.typing)  # fmt: skip


def state_of(status: str, assignee: str | None, draft_id: int | None) -> State:
    """A conversation's desk state from its stored status, assignee and pending draft."""
    if status == "closed":
        return "resolved"
    if status == "handoff":
        return "with_agent" if assignee else "waiting"
    return "waiting" if draft_id is not None else "bot"


class Desk:
    """The desk over a store (`chatbot.store.Store`) and the app config (`[desk]`, the default language)."""

    def __init__(self, store: Any, config: Any):
        self.store = store
        self.config = config
        self.autonomy = Autonomy(store, config)

    # -- reading ----------------------------------------------------------------------------------------------
    def inbox(self, state: State | None = None, search: str = "", limit: int = 200) -> list[InboxItem]:
        """Conversations, those waiting for a person first, then by latest activity (at most `limit`; every
        waiting one comes before the cut); `state` and `search` (text in any of the conversation's messages) filter
        them."""
        if state is not None and state not in STATE_LABELS:
            raise DeskError(f"unknown state {state!r}: use one of {', '.join(STATE_LABELS)}")
        items = []
        for row in self.store.desk_rows(search, limit):
            item_state = state_of(row["status"], row["assignee"], row["pending_draft"])
            if state is not None and item_state != state:
                continue
            items.append(InboxItem(
                conversation_id=row["id"], state=item_state, customer_text=row["customer_text"],
                customer_at=row["customer_at"], last_at=row["last_at"], unread=row["customer_id"] > row["read_id"],
                assignee=row["assignee"], language=row["language"], draft_id=row["pending_draft"],
            ))  # fmt: skip
        return items

    def counts(self) -> dict[State, int]:
        """How many conversations are in each state (the tab title shows `waiting`)."""
        out: dict[State, int] = dict.fromkeys(STATE_LABELS, 0)
        for status, assigned, drafted, n in self.store.desk_counts():
            out[state_of(status, "someone" if assigned else None, 0 if drafted else None)] += n
        return out

    def view(self, conversation_id: str, agent: str | None = None) -> ConversationView:
        """The conversation as the pane shows it; with `agent`, it counts as read up to its newest message."""
        conversation = self._conversation(conversation_id)
        messages = tuple(self.store.messages(conversation_id))
        pending = [d for d in self.store.conversation_drafts(conversation_id) if d.state == "pending"]
        draft = None
        if pending:
            first = pending[0]
            context = tuple(m for m in messages if m.id <= first.question_message_id)
            draft = Draft(**{**first.__dict__, "context": context})
        if agent is not None and messages and messages[-1].id > conversation.read_id:
            self.store.mark_read(conversation_id, messages[-1].id)
        state = state_of(conversation.status, conversation.assignee, draft.id if draft else None)
        return ConversationView(conversation_id, state, conversation.assignee, conversation.language, messages,
                                draft, self.typists(conversation_id, excluding=agent))  # fmt: skip

    def draft(self, draft_id: int) -> Draft:
        """One draft, whatever its state."""
        try:
            return self.store.draft(int(draft_id))
        except (NotFoundError, ValueError, TypeError):
            raise DeskError(f"unknown draft {draft_id!r}: open the conversation again from the inbox") from None

    # -- typing -----------------------------------------------------------------------------------------------
    def typing(self, conversation_id: str, agent: str) -> None:
        """`agent` pressed a key in the reply box of `conversation_id`."""
        self.store.set_typing(conversation_id, agent, time.time())  # in the store: agents on other workers see it

    def typists(self, conversation_id: str, excluding: str | None = None) -> tuple[str, ...]:
        """Agents who typed in `conversation_id` within `[desk] typing_s`, by name."""
        horizon = time.time() - self.config.desk.typing_s
        return tuple(a for a in self.store.typists(conversation_id, horizon) if a != excluding)

    def _stop_typing(self, conversation_id: str, agent: str) -> None:
        self.store.clear_typing(conversation_id, agent)

    # -- states and assignment --------------------------------------------------------------------------------
    def assign(self, conversation_id: str, agent: str) -> None:
        """Assign the conversation to `agent` ("assign to me"); the bot stays silent there from now on."""
        self._open(conversation_id)
        self.store.assign(conversation_id, agent)

    def reply(self, conversation_id: str, agent: str, text: str) -> int:
        """Send the agent's message to the customer; an unassigned conversation is assigned to `agent` first.
        Returns the message id."""
        if not text.strip():
            raise DeskError("the reply is empty: type the message to send")
        conversation = self._open(conversation_id)
        if conversation.assignee is None or conversation.status != "handoff":
            self.store.assign(conversation_id, conversation.assignee or agent)
        message_id = self.store.agent_reply(conversation_id, agent, text.strip())
        self.autonomy.close_suggestions(conversation_id, agent)
        self._stop_typing(conversation_id, agent)
        return message_id

    def hand_back(self, conversation_id: str, agent: str) -> None:
        """Give the conversation back to the bot; the customer is told."""
        conversation = self._open(conversation_id)
        if conversation.status != "handoff":
            raise DeskError(f"conversation {conversation_id[:8]} is already with the bot; nothing to hand back")
        self.store.hand_back(conversation_id, agent, notice("handback", self._language(conversation)))

    def resolve(self, conversation_id: str, agent: str) -> None:
        """Close the conversation politely (a closing notice); it is `resolved` until reopened."""
        conversation = self._open(conversation_id)
        self.store.resolve(conversation_id, agent, notice("resolved", self._language(conversation)))
        self._stop_typing(conversation_id, agent)

    def reopen(self, conversation_id: str, agent: str) -> None:
        """Open a resolved conversation again, assigned to `agent`."""
        conversation = self._conversation(conversation_id)
        if conversation.status != "closed":
            raise DeskError(f"conversation {conversation_id[:8]} is not resolved: there is nothing to reopen")
        self.store.reopen(conversation_id, agent)

    # -- review -----------------------------------------------------------------------------------------------
    def approve(self, draft_id: int, version: str, agent: str, text: str | None = None) -> int:
        """Send the draft on screen as is (`text` None) or with the agent's edit. Refused (`StaleDraftError`, nothing
        sent) unless `version` is the draft's current version, i.e. the one the agent read."""
        if text is not None and not text.strip():
            raise DeskError("the edited reply is empty: write the text to send, or approve the draft as it is")
        draft = self._current_draft(draft_id, version)
        message_id = self.store.approve_draft(draft.id, agent, text)
        self.autonomy.reviewed(draft)  # promotion or demotion of its top source, at once
        return message_id

    def reject(self, draft_id: int, version: str, agent: str, reason: str) -> None:
        """Reject the draft on screen with a reason; the conversation then waits for a person."""
        if not reason.strip():
            raise DeskError("give a reason for the rejection (it is kept for the FAQ and training review)")
        draft = self._current_draft(draft_id, version)
        self.store.reject_draft(draft.id, agent, reason.strip())
        self.autonomy.reviewed(draft)

    # -- helpers ----------------------------------------------------------------------------------------------
    def _conversation(self, conversation_id: str) -> Any:
        try:
            return self.store.get_conversation(conversation_id)
        except NotFoundError:
            raise DeskError(f"unknown conversation {conversation_id!r}: pick one from the inbox") from None

    def _open(self, conversation_id: str) -> Any:
        conversation = self._conversation(conversation_id)
        if conversation.status == "closed":
            raise DeskError(f"conversation {conversation_id[:8]} is resolved: reopen it first")
        return conversation

    def _language(self, conversation: Any) -> str:
        return conversation.language or self.config.language.default

    def _current_draft(self, draft_id: int, version: str) -> Draft:
        draft = self.draft(draft_id)
        if draft.version != version:
            who = f" by {draft.agent}" if draft.agent else ""
            raise StaleDraftError(f"draft #{draft.id} changed since you opened it (it was {draft.state}{who}); "
                                  "nothing was sent: open the conversation again to see where it stands")  # fmt: skip
        return draft

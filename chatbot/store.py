"""The conversation store: SQLite in `$CHATBOT_HOME` (WAL) by default, or PostgreSQL (`[store] url`) for several
workers; append-only named migrations, the same on both.

Conversations, messages (role, text, route, FAQ ids with the index version, adapter, language, timings), drafts
with their review state, handoffs, feedback, and the web app's users and sessions. Every write is one
transaction: a message counts as sent only once `add_message` (or the review call that sends it) has committed.
The SQL is written once for both databases (`chatbot.database` rewrites what PostgreSQL spells otherwise).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from chatbot import passwords
from chatbot.config import StoreConfig
from chatbot.database import Connection, Database, IntegrityError, SQLiteDatabase, StoreError, open_database
from chatbot.passwords import hash_password, needs_rehash, token_digest, verify_password
from chatbot.redact import redact
from chatbot.settings import chatbot_home

MIGRATIONS: list[tuple[str, Callable[[Connection], None]]] = []
_THROTTLE_COLUMNS = ("failures", "locks", "locked_until", "last_failure", "pending")


class NotFoundError(StoreError, KeyError):
    """An unknown conversation, message, draft or user."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "not found"


class ConversationClosedError(StoreError):
    """A message to a closed conversation."""


class DraftStateError(StoreError):
    """A draft that was already reviewed (e.g. approved twice by two agents)."""


def migration(fn: Callable[[Connection], None]) -> Callable[[Connection], None]:
    """Register a migration; they run once each, in definition order. Never edit one that shipped: add another.

    `fn(db)` gets the migration's transaction and runs SQL both databases accept (`chatbot.database`): SQLite's
    column types, `?` placeholders, no SQLite-only functions."""
    MIGRATIONS.append((fn.__name__, fn))
    return fn


def _script(db: Connection, sql: str) -> None:
    """Run `;`-separated statements inside the current transaction (executescript would commit it)."""
    for statement in sql.split(";"):
        if statement.strip():
            db.execute(statement)


@migration
def m001_initial(db: Connection) -> None:
    _script(
        db,
        """
        CREATE TABLE conversations (
            id TEXT PRIMARY KEY, channel TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'open',
            language TEXT, created_at REAL NOT NULL, closed_at REAL
        );
        CREATE TABLE messages (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            conversation_id TEXT NOT NULL REFERENCES conversations(id),
            role TEXT NOT NULL CHECK (role IN ('user', 'bot', 'agent', 'system')),
            kind TEXT NOT NULL DEFAULT 'reply' CHECK (kind IN ('reply', 'notice')),
            text TEXT NOT NULL, route TEXT, grounded INTEGER, fallback INTEGER NOT NULL DEFAULT 0,
            language TEXT, faq_ids TEXT NOT NULL DEFAULT '[]', scores TEXT NOT NULL DEFAULT '[]',
            index_version TEXT, adapter TEXT, timings TEXT NOT NULL DEFAULT '{}', agent TEXT,
            draft_id INTEGER, status TEXT NOT NULL DEFAULT 'sent', created_at REAL NOT NULL
        );
        CREATE INDEX messages_conversation ON messages(conversation_id, id);
        CREATE TABLE drafts (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            conversation_id TEXT NOT NULL REFERENCES conversations(id),
            question_message_id INTEGER NOT NULL REFERENCES messages(id),
            text TEXT NOT NULL, final_text TEXT,
            state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'approved', 'edited', 'rejected')),
            agent TEXT, reviewed_at REAL, reason TEXT, sent_message_id INTEGER,
            language TEXT, grounded INTEGER, sources TEXT NOT NULL DEFAULT '[]', index_version TEXT, adapter TEXT,
            created_at REAL NOT NULL
        );
        CREATE INDEX drafts_state ON drafts(state, id);
        CREATE TABLE handoffs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            conversation_id TEXT NOT NULL REFERENCES conversations(id),
            reason TEXT NOT NULL, created_at REAL NOT NULL, resolved_at REAL, agent TEXT
        );
        CREATE TABLE feedback (
            id INTEGER PRIMARY KEY AUTOINCREMENT, message_id INTEGER NOT NULL REFERENCES messages(id),
            up INTEGER NOT NULL, comment TEXT, created_at REAL NOT NULL
        );
        CREATE TABLE users (
            name TEXT PRIMARY KEY, role TEXT NOT NULL CHECK (role IN ('agent', 'admin')),
            password_hash TEXT NOT NULL, created_at REAL NOT NULL
        );
        CREATE TABLE sessions (
            token TEXT PRIMARY KEY, user_name TEXT NOT NULL REFERENCES users(name),
            created_at REAL NOT NULL, expires_at REAL NOT NULL
        );
        """,
    )


@migration
def m002_rejected_generations(db: Connection) -> None:
    """A generated reply that failed the claim check is kept beside the message that replaced it, with the reason:
    counted on the admin page and exported as negative training examples."""
    _script(
        db,
        """
        ALTER TABLE messages ADD COLUMN rejected_text TEXT;
        ALTER TABLE messages ADD COLUMN rejection TEXT;
        """,
    )


@migration
def m003_conversation_key(db: Connection) -> None:
    """A random key from which each conversation's secret is derived (HMAC of its id), so only the client that
    started a conversation (and holds its secret) can read or continue it."""
    db.execute("CREATE TABLE keys (name TEXT PRIMARY KEY, value BLOB NOT NULL)")
    db.execute("INSERT INTO keys VALUES ('conversation', ?)", (secrets.token_bytes(32),))


@migration
def m004_session_token_digests(db: Connection) -> None:
    """Sessions keep the SHA-256 of their token, not the token: a copy of the database opens no session. Sessions
    made before keep working (their tokens are replaced by their digests here)."""
    for (token,) in db.execute("SELECT token FROM sessions").fetchall():
        db.execute("UPDATE sessions SET token = ? WHERE token = ?", (token_digest(token), token))


@migration
def m101_desk(db: Connection) -> None:
    """The support desk: who is assigned to a conversation, since when, and the newest message an agent has read
    there (the inbox's unread marker)."""
    _script(
        db,
        """
        ALTER TABLE conversations ADD COLUMN assignee TEXT;
        ALTER TABLE conversations ADD COLUMN assigned_at REAL;
        ALTER TABLE conversations ADD COLUMN read_id INTEGER NOT NULL DEFAULT 0;
        CREATE INDEX drafts_conversation ON drafts(conversation_id, state)
        """,
    )


@migration
def m102_autonomy(db: Connection) -> None:
    """Each FAQ entry's autonomy mode as a history of changes (the newest row is the current mode), with the reason,
    whether an admin pinned it, and the evidence at that moment (`chatbot/autonomy.py` writes and reads it)."""
    _script(
        db,
        """
        CREATE TABLE autonomy_changes (
            id INTEGER PRIMARY KEY AUTOINCREMENT, faq_id TEXT NOT NULL,
            mode TEXT NOT NULL CHECK (mode IN ('shadow', 'draft', 'auto')), pinned INTEGER NOT NULL DEFAULT 0,
            reason TEXT NOT NULL, actor TEXT, evidence TEXT NOT NULL DEFAULT '{}', created_at REAL NOT NULL
        );
        CREATE INDEX autonomy_changes_entry ON autonomy_changes(faq_id, id)
        """,
    )


@migration
def m103_worker_state(db: Connection) -> None:
    """What several app workers on one store must share besides conversations: who is typing in the desk's reply
    boxes, and the login throttle's failure counts and locks per user name and per client address."""
    _script(
        db,
        """
        CREATE TABLE agent_typing (
            conversation_id TEXT NOT NULL, agent TEXT NOT NULL, at REAL NOT NULL, PRIMARY KEY (conversation_id, agent)
        );
        CREATE TABLE login_throttle (
            kind TEXT NOT NULL CHECK (kind IN ('name', 'address')), name TEXT NOT NULL,
            failures INTEGER NOT NULL DEFAULT 0, locks INTEGER NOT NULL DEFAULT 0, locked_until REAL NOT NULL DEFAULT 0,
            last_failure REAL NOT NULL DEFAULT 0, pending INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (kind, name)
        )
        """,
    )


@dataclass(frozen=True)
class Message:
    id: int
    conversation_id: str
    role: Literal["user", "bot", "agent", "system"]
    kind: Literal["reply", "notice"]
    text: str
    route: str | None
    grounded: bool | None
    fallback: bool
    language: str | None
    faq_ids: tuple[str, ...]
    scores: tuple[float, ...]
    index_version: str | None
    adapter: str | None
    timings: dict[str, float]
    agent: str | None
    draft_id: int | None
    status: str
    created_at: float
    rejected_text: str | None = None
    """The generated reply that failed the claim check (the message holds what was sent instead)."""
    rejection: str | None = None
    """Why `rejected_text` failed, e.g. "names 'British money transfer', which no source mentions"."""


@dataclass(frozen=True)
class Conversation:
    id: str
    channel: str
    status: Literal["open", "handoff", "closed"]
    language: str | None
    created_at: float
    closed_at: float | None
    assignee: str | None = None
    """The agent handling the conversation (None: nobody yet)."""
    assigned_at: float | None = None
    read_id: int = 0
    """The newest message id an agent has seen in the desk's conversation pane."""


@dataclass(frozen=True)
class Draft:
    id: int
    conversation_id: str
    question_message_id: int
    text: str
    final_text: str | None
    state: Literal["pending", "approved", "edited", "rejected"]
    agent: str | None
    reviewed_at: float | None
    reason: str | None
    sent_message_id: int | None
    language: str | None
    grounded: bool | None
    sources: tuple[dict[str, Any], ...]
    """`{"faq_id", "question", "answer", "score"}` per source."""
    index_version: str | None
    adapter: str | None
    created_at: float
    context: tuple[Message, ...] = ()
    """The conversation up to the question (filled by `pending_drafts`)."""

    @property
    def version(self) -> str:
        """Changes whenever the draft is reviewed: the desk's review buttons send the version they showed."""
        return f"{self.id}:{self.state}:{self.reviewed_at or self.created_at!r}"


@dataclass(frozen=True)
class User:
    name: str
    role: Literal["agent", "admin"]
    created_at: float


def _message(row: Any) -> Message:
    return Message(
        id=row["id"], conversation_id=row["conversation_id"], role=row["role"], kind=row["kind"], text=row["text"],
        route=row["route"], grounded=None if row["grounded"] is None else bool(row["grounded"]),
        fallback=bool(row["fallback"]), language=row["language"], faq_ids=tuple(json.loads(row["faq_ids"])),
        scores=tuple(json.loads(row["scores"])), index_version=row["index_version"], adapter=row["adapter"],
        timings=json.loads(row["timings"]), agent=row["agent"], draft_id=row["draft_id"], status=row["status"],
        created_at=row["created_at"], rejected_text=row["rejected_text"], rejection=row["rejection"],
    )  # fmt: skip


def _draft(row: Any, context: tuple[Message, ...] = ()) -> Draft:
    return Draft(
        id=row["id"], conversation_id=row["conversation_id"], question_message_id=row["question_message_id"],
        text=row["text"], final_text=row["final_text"], state=row["state"], agent=row["agent"],
        reviewed_at=row["reviewed_at"], reason=row["reason"], sent_message_id=row["sent_message_id"],
        language=row["language"], grounded=None if row["grounded"] is None else bool(row["grounded"]),
        sources=tuple(json.loads(row["sources"])), index_version=row["index_version"], adapter=row["adapter"],
        created_at=row["created_at"], context=context,
    )  # fmt: skip


class Store:
    """The store, on SQLite (the default) or PostgreSQL (`[store] url`). Cheap `__init__`; `warm_up()` opens the
    database and runs pending migrations.

    Thread-safe. SQLite: one connection guarded by a lock, each write one `BEGIN IMMEDIATE` transaction.
    PostgreSQL: a connection pool, each write one transaction on one of its connections; several processes may
    share the database (reviews stay exactly-once through row locks and conditional updates).
    """

    def __init__(self, config: StoreConfig | None = None, path: str | Path | None = None):
        self.config = config or StoreConfig()
        self.path = Path(path) if path else None
        """The SQLite file (an explicit `path` wins over `config.url`); None on PostgreSQL."""
        self._database: Database | None = None
        self._lock = threading.Lock()
        self._conversation_key: bytes | None = None

    # -- lifecycle ----------------------------------------------------------------------------------------------
    def warm_up(self) -> Store:
        if self._database is not None:
            return self
        url = self.config.url or os.environ.get("CHATBOT_STORE_URL")
        if self.path is None and url:
            database = open_database(url, chatbot_home(), self.config.pool_size)
            if isinstance(database, SQLiteDatabase):
                self.path = database.path
        else:
            if self.path is None:
                configured = Path(self.config.path).expanduser()
                self.path = configured if configured.is_absolute() else chatbot_home() / configured
            database = SQLiteDatabase(self.path)
        self._database = database
        self._migrate()
        self.purge_sessions()
        return self

    def close(self) -> None:
        if self._database is not None:
            self._database.close()
            self._database = None

    @property
    def database(self) -> Database:
        """The open database (`dialect`, `day()`, `for_update` for SQL written for both)."""
        if self._database is None:
            raise StoreError("the store is not open: call warm_up() first")
        return self._database

    def _migrate(self) -> None:
        with self.transaction() as db:
            self.database.lock_schema(db)
            if self.database.dialect == "sqlite":
                db.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at REAL NOT NULL)")
            else:
                db.execute("CREATE TABLE IF NOT EXISTS _migrations (id INTEGER PRIMARY KEY AUTOINCREMENT, "
                           "name TEXT NOT NULL UNIQUE, applied_at REAL NOT NULL)")  # fmt: skip
            done = {r[0] for r in db.execute("SELECT name FROM _migrations").fetchall()}
            for name, fn in MIGRATIONS:
                if name not in done:
                    fn(db)
                    db.execute("INSERT INTO _migrations (name, applied_at) VALUES (?, ?)", (name, time.time()))

    def applied_migrations(self) -> list[str]:
        order = self.database.insertion_order
        return [r[0] for r in self.read(f"SELECT name FROM _migrations ORDER BY {order}")]

    def transaction(self) -> AbstractContextManager[Connection]:
        """One write transaction (`with store.transaction() as db:`); rolled back entirely on any error. Its
        `execute(sql, args)` takes `?` placeholders on either database."""
        return self.database.transaction()

    def _clean(self, text: str, keep: Sequence[str] = ()) -> str:
        return redact(text, keep) if self.config.redact else text

    def read(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        """The rows of a query (each by index, by column name and as `dict(row)`), `?` placeholders. Inside a
        `transaction()` of the same thread it reads that transaction's writes."""
        return self.database.read(sql, args)

    _read = read

    # -- conversations ------------------------------------------------------------------------------------------
    def create_conversation(self, channel: str = "web", language: str | None = None) -> str:
        conversation_id = uuid.uuid4().hex
        with self.transaction() as db:
            db.execute(
                "INSERT INTO conversations (id, channel, language, created_at) VALUES (?, ?, ?, ?)",
                (conversation_id, channel, language, time.time()),
            )
        return conversation_id

    def conversation_secret(self, conversation_id: str) -> str:
        """The secret that proves a client started `conversation_id` (derived from the id with the store's key, so
        nothing per conversation is stored). Hand it only to the client that created the conversation."""
        with self._lock:
            if self._conversation_key is None:
                self._conversation_key = bytes(self._read("SELECT value FROM keys WHERE name = 'conversation'")[0][0])
        return hmac.new(self._conversation_key, conversation_id.encode(), hashlib.sha256).hexdigest()[:32]

    def check_secret(self, conversation_id: str, secret: str | None) -> bool:
        """Whether `secret` is `conversation_id`'s secret (constant time; False for a missing one)."""
        if not secret or not conversation_id:
            return False
        return hmac.compare_digest(self.conversation_secret(conversation_id), secret)

    def get_conversation(self, conversation_id: str) -> Conversation:
        rows = self._read("SELECT * FROM conversations WHERE id = ?", (conversation_id,))
        if not rows:
            raise NotFoundError(f"unknown conversation {conversation_id!r}: start one with start_conversation()")
        return Conversation(**dict(rows[0]))

    def set_language(self, conversation_id: str, language: str) -> None:
        with self.transaction() as db:
            db.execute("UPDATE conversations SET language = ? WHERE id = ?", (language, conversation_id))

    def close_conversation(self, conversation_id: str) -> None:
        """Close it: no further messages; open handoffs are resolved."""
        self.get_conversation(conversation_id)
        now = time.time()
        with self.transaction() as db:
            db.execute("UPDATE conversations SET status = 'closed', closed_at = ? WHERE id = ?", (now, conversation_id))
            db.execute("UPDATE handoffs SET resolved_at = ? WHERE conversation_id = ? AND resolved_at IS NULL",
                       (now, conversation_id))  # fmt: skip

    def _insert_message(self, db: Connection, conversation_id: str, role: str, text: str, **fields: Any) -> int:
        keep = fields.pop("keep", ())  # the shop's own addresses and numbers a reply quotes stay as written
        row = {
            "conversation_id": conversation_id, "role": role, "text": self._clean(text, keep),
            "created_at": time.time(), "kind": fields.pop("kind", "reply"),
        }  # fmt: skip
        for key in ("faq_ids", "scores"):
            if key in fields:
                row[key] = json.dumps(list(fields.pop(key)))
        if "timings" in fields:
            row["timings"] = json.dumps(fields.pop("timings"))
        if fields.get("rejected_text"):
            fields["rejected_text"] = self._clean(fields["rejected_text"], keep)
        for key in ("grounded", "fallback"):
            if key in fields and fields[key] is not None:
                fields[key] = int(bool(fields[key]))
        row.update(fields)
        columns = ", ".join(row)
        return db.insert(f"INSERT INTO messages ({columns}) VALUES ({', '.join('?' * len(row))})", tuple(row.values()))

    def add_message(self, conversation_id: str, role: str, text: str, **fields: Any) -> int:
        """Append a message (committed when this returns) and return its id. `fields`: kind, route, grounded,
        fallback, language, faq_ids, scores, index_version, adapter, timings (dict), agent, draft_id, status, and
        `keep`: exact strings redaction leaves as written (the shop's own e-mail address a reply quotes)."""
        self._require_open(conversation_id)
        with self.transaction() as db:
            return self._insert_message(db, conversation_id, role, text, **fields)

    def _require_open(self, conversation_id: str) -> Conversation:
        conversation = self.get_conversation(conversation_id)
        if conversation.status == "closed":
            raise ConversationClosedError(f"conversation {conversation_id} is closed; start a new one")
        return conversation

    def record_exchange(
        self,
        conversation_id: str,
        question: str,
        question_fields: dict[str, Any],
        reply: str | None,
        reply_fields: dict[str, Any],
        draft: dict[str, Any] | None = None,
        handoff_reason: str | None = None,
    ) -> tuple[int, int | None, int | None]:
        """The customer's message, the bot's reply (or notice; None while a person handles the conversation and
        the bot stays silent), an optional draft and handoff, in one transaction.

        Returns `(question_id, reply_id, draft_id)`.
        """
        self._require_open(conversation_id)
        with self.transaction() as db:
            question_id = self._insert_message(db, conversation_id, "user", question, **question_fields)
            draft_id = None
            if draft is not None:
                draft_id = db.insert(
                    "INSERT INTO drafts (conversation_id, question_message_id, text, language, grounded, sources, "
                    "index_version, adapter, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (conversation_id, question_id, self._clean(draft["text"], draft.get("keep", ())),
                     draft.get("language"), int(bool(draft.get("grounded"))), json.dumps(draft.get("sources", [])),
                     draft.get("index_version"), draft.get("adapter"), time.time()),
                )  # fmt: skip
                reply_fields = {**reply_fields, "draft_id": draft_id}
            reply_id = None
            if reply is not None:
                reply_id = self._insert_message(db, conversation_id, "bot", reply, **reply_fields)
            if handoff_reason is not None:
                self._open_handoff(db, conversation_id, handoff_reason)
        return question_id, reply_id, draft_id

    def messages(self, conversation_id: str, after_id: int | None = None) -> list[Message]:
        """Messages of a conversation in order; with `after_id`, only newer ones (for polling UIs)."""
        self.get_conversation(conversation_id)
        rows = self._read(
            "SELECT * FROM messages WHERE conversation_id = ? AND id > ? ORDER BY id", (conversation_id, after_id or 0)
        )
        return [_message(r) for r in rows]

    def message(self, message_id: int) -> Message:
        rows = self._read("SELECT * FROM messages WHERE id = ?", (message_id,))
        if not rows:
            raise NotFoundError(f"unknown message {message_id}")
        return _message(rows[0])

    # -- handoffs -----------------------------------------------------------------------------------------------
    def _open_handoff(self, db: Connection, conversation_id: str, reason: str) -> None:
        if self.database.for_update:  # the conversation's row lock keeps two workers from opening a handoff each
            db.execute(f"SELECT id FROM conversations WHERE id = ?{self.database.for_update}", (conversation_id,))
        open_one = db.execute(
            "SELECT 1 FROM handoffs WHERE conversation_id = ? AND resolved_at IS NULL", (conversation_id,)
        ).fetchone()
        if not open_one:
            db.execute("INSERT INTO handoffs (conversation_id, reason, created_at) VALUES (?, ?, ?)",
                       (conversation_id, self._clean(reason), time.time()))  # fmt: skip
        db.execute("UPDATE conversations SET status = 'handoff' WHERE id = ? AND status = 'open'", (conversation_id,))

    def hand_off(self, conversation_id: str, reason: str, notice: str | None = None) -> None:
        """Hand the conversation to agents (idempotent), optionally with a notice message to the customer."""
        self._require_open(conversation_id)
        with self.transaction() as db:
            self._open_handoff(db, conversation_id, reason)
            if notice:
                self._insert_message(db, conversation_id, "bot", notice, kind="notice", route="handoff")

    def open_handoffs(self) -> list[dict[str, Any]]:
        """Handed-off conversations waiting for an agent, oldest first: `{conversation_id, reason, created_at,
        messages}`."""
        rows = self._read("SELECT * FROM handoffs WHERE resolved_at IS NULL ORDER BY id")
        return [
            {"id": r["id"], "conversation_id": r["conversation_id"], "reason": r["reason"],
             "created_at": r["created_at"], "messages": self.messages(r["conversation_id"])}
            for r in rows
        ]  # fmt: skip

    def agent_reply(self, conversation_id: str, agent: str, text: str) -> int:
        """An agent's message to the customer (committed = sent); returns its id."""
        if not text.strip():
            raise StoreError("an agent reply needs text")
        self._require_open(conversation_id)
        with self.transaction() as db:
            return self._insert_message(db, conversation_id, "agent", text, agent=agent)

    def resolve_handoff(self, conversation_id: str, agent: str) -> None:
        """Give the conversation back to the bot."""
        with self.transaction() as db:
            db.execute("UPDATE handoffs SET resolved_at = ?, agent = ? "
                       "WHERE conversation_id = ? AND resolved_at IS NULL",
                       (time.time(), agent, conversation_id))  # fmt: skip
            db.execute(
                "UPDATE conversations SET status = 'open' WHERE id = ? AND status = 'handoff'", (conversation_id,)
            )

    # -- drafts -------------------------------------------------------------------------------------------------
    def draft(self, draft_id: int) -> Draft:
        rows = self._read("SELECT * FROM drafts WHERE id = ?", (draft_id,))
        if not rows:
            raise NotFoundError(f"unknown draft {draft_id}")
        return _draft(rows[0])

    def pending_drafts(self) -> list[Draft]:
        """Drafts waiting for review, oldest first, each with the conversation up to its question."""
        rows = self._read("SELECT * FROM drafts WHERE state = 'pending' ORDER BY id")
        out = []
        for r in rows:
            context = self._read(
                "SELECT * FROM messages WHERE conversation_id = ? AND id <= ? ORDER BY id",
                (r["conversation_id"], r["question_message_id"]),
            )
            out.append(_draft(r, tuple(_message(m) for m in context)))
        return out

    def approve_draft(self, draft_id: int, agent: str, text: str | None = None) -> int:
        """Send a draft as is (`approved`) or with the agent's text (`edited`); returns the sent message's id.

        Atomic: the state changes from `pending` in the same transaction that sends, so a second approval (another
        agent, a double click) raises `DraftStateError` and nothing is sent twice.
        """
        with self.transaction() as db:
            row = db.execute(f"SELECT * FROM drafts WHERE id = ?{self.database.for_update}", (draft_id,)).fetchone()
            if row is None:
                raise NotFoundError(f"unknown draft {draft_id}")
            if row["state"] != "pending":
                raise DraftStateError(
                    f"draft {draft_id} was already {row['state']} by {row['agent']}; nothing was sent"
                )
            final = row["text"] if text is None or not text.strip() else self._clean(text)
            state = "approved" if final == row["text"] else "edited"
            status = db.execute("SELECT status FROM conversations WHERE id = ?", (row["conversation_id"],)).fetchone()
            if status["status"] == "closed":
                raise ConversationClosedError(
                    f"conversation {row['conversation_id']} is closed; the draft cannot go out"
                )
            message_id = self._insert_message(
                db, row["conversation_id"], "agent", final, agent=agent, draft_id=draft_id, route="draft",
                language=row["language"], index_version=row["index_version"], adapter=row["adapter"],
                faq_ids=[s.get("faq_id") for s in json.loads(row["sources"])],
                scores=[s.get("score") for s in json.loads(row["sources"])],
            )  # fmt: skip
            cursor = db.execute(
                "UPDATE drafts SET state = ?, final_text = ?, agent = ?, reviewed_at = ?, sent_message_id = ? "
                "WHERE id = ? AND state = 'pending'",
                (state, final, agent, time.time(), message_id, draft_id),
            )
            if cursor.rowcount != 1:
                raise DraftStateError(f"draft {draft_id} was reviewed concurrently; nothing was sent")
        return message_id

    def reject_draft(self, draft_id: int, agent: str, reason: str) -> None:
        """Reject a draft; the conversation is handed off to a person. The reason is redacted like every stored text
        (agents quote customers in it)."""
        with self.transaction() as db:
            row = db.execute(f"SELECT * FROM drafts WHERE id = ?{self.database.for_update}", (draft_id,)).fetchone()
            if row is None:
                raise NotFoundError(f"unknown draft {draft_id}")
            if row["state"] != "pending":
                raise DraftStateError(f"draft {draft_id} was already {row['state']} by {row['agent']}")
            db.execute(
                "UPDATE drafts SET state = 'rejected', agent = ?, reviewed_at = ?, reason = ? WHERE id = ?",
                (agent, time.time(), self._clean(reason), draft_id),
            )
            self._open_handoff(db, row["conversation_id"], f"draft rejected by {agent}: {reason}")

    # -- the support desk ---------------------------------------------------------------------------------------
    def desk_rows(self, search: str = "", limit: int = 200) -> list[dict[str, Any]]:
        """Conversations with a message for the desk's inbox, those waiting for a person first, then the latest
        activity: the conversation's columns plus `last_id`, `last_at`, `customer_text`, `customer_at`,
        `customer_id` (the customer's newest message; "", the last message's time and 0 before the customer wrote
        anything) and `pending_draft` (the oldest pending draft's id, or None). `search` keeps those whose messages
        contain it (case-insensitive)."""
        where, args = "", [limit]
        if search.strip():
            escaped = "".join("\\" + ch if ch in "\\%_" else ch for ch in search.strip().lower())
            pattern = f"%{escaped}%"
            where = ("AND EXISTS (SELECT 1 FROM messages s WHERE s.conversation_id = c.id "
                     "AND lower(s.text) LIKE ? ESCAPE '\\')")  # fmt: skip
            args = [pattern, limit]
        rows = self._read(
            "SELECT * FROM (SELECT c.*, last.id AS last_id, last.created_at AS last_at, "
            "COALESCE(cust.text, '') AS customer_text, COALESCE(cust.created_at, last.created_at) AS customer_at, "
            "COALESCE(cust.id, 0) AS customer_id, "
            "(SELECT MIN(d.id) FROM drafts d WHERE d.conversation_id = c.id AND d.state = 'pending') AS pending_draft "
            "FROM conversations c "
            "JOIN messages last ON last.id = (SELECT MAX(id) FROM messages WHERE conversation_id = c.id) "
            "LEFT JOIN messages cust ON cust.id = (SELECT MAX(id) FROM messages WHERE conversation_id = c.id "
            f"AND role = 'user') WHERE 1 = 1 {where}) inbox "
            # those waiting for a person first (never cut off by the limit), then the latest activity
            "ORDER BY CASE WHEN status = 'handoff' AND assignee IS NULL THEN 0 "
            "WHEN status = 'open' AND pending_draft IS NOT NULL THEN 0 ELSE 1 END, last_id DESC LIMIT ?",
            args,
        )
        return [dict(r) for r in rows]

    def desk_counts(self) -> list[tuple[str, bool, bool, int]]:
        """How many conversations with a message have each `(status, assigned, a pending draft)`, as
        `(status, assigned, drafted, n)` rows."""
        rows = self._read(
            "SELECT c.status, c.assignee IS NOT NULL AS assigned, EXISTS (SELECT 1 FROM drafts d WHERE "
            "d.conversation_id = c.id AND d.state = 'pending') AS drafted, COUNT(*) AS n FROM conversations c "
            "WHERE EXISTS (SELECT 1 FROM messages m WHERE m.conversation_id = c.id) GROUP BY 1, 2, 3"
        )
        return [(r["status"], bool(r["assigned"]), bool(r["drafted"]), r["n"]) for r in rows]

    def conversation_drafts(self, conversation_id: str) -> list[Draft]:
        """A conversation's drafts, oldest first."""
        rows = self._read("SELECT * FROM drafts WHERE conversation_id = ? ORDER BY id", (conversation_id,))
        return [_draft(r) for r in rows]

    def assign(self, conversation_id: str, agent: str | None) -> None:
        """Assign the conversation to `agent` (None: unassign). An agent taking a conversation from the bot hands it
        off: from then on the bot stays silent there."""
        self._require_open(conversation_id)
        with self.transaction() as db:
            db.execute("UPDATE conversations SET assignee = ?, assigned_at = ? WHERE id = ?",
                       (agent, time.time() if agent else None, conversation_id))  # fmt: skip
            if agent:
                self._open_handoff(db, conversation_id, f"taken by agent {agent}")

    def hand_back(self, conversation_id: str, agent: str, notice: str) -> int:
        """Give the conversation back to the bot with `notice` to the customer, in one transaction; returns the
        notice's id."""
        self._require_open(conversation_id)
        with self.transaction() as db:
            db.execute("UPDATE handoffs SET resolved_at = ?, agent = ? WHERE conversation_id = ? "
                       "AND resolved_at IS NULL", (time.time(), agent, conversation_id))  # fmt: skip
            db.execute("UPDATE conversations SET status = 'open', assignee = NULL, assigned_at = NULL WHERE id = ?",
                       (conversation_id,))  # fmt: skip
            return self._insert_message(db, conversation_id, "bot", notice, kind="notice", agent=agent)

    def resolve(self, conversation_id: str, agent: str, notice: str) -> int:
        """Close the conversation with a closing `notice` to the customer (one transaction); pending drafts stay
        unsent. Returns the notice's id."""
        self._require_open(conversation_id)
        now = time.time()
        with self.transaction() as db:
            notice_id = self._insert_message(db, conversation_id, "bot", notice, kind="notice", agent=agent)
            db.execute("UPDATE conversations SET status = 'closed', closed_at = ?, assignee = COALESCE(assignee, ?) "
                       "WHERE id = ?", (now, agent, conversation_id))  # fmt: skip
            db.execute("UPDATE handoffs SET resolved_at = ?, agent = COALESCE(agent, ?) WHERE conversation_id = ? "
                       "AND resolved_at IS NULL", (now, agent, conversation_id))  # fmt: skip
        return notice_id

    def reopen(self, conversation_id: str, agent: str) -> None:
        """Open a resolved conversation again, assigned to `agent` (the bot stays silent until handed back)."""
        conversation = self.get_conversation(conversation_id)
        if conversation.status != "closed":
            raise StoreError(f"conversation {conversation_id} is not resolved; only a resolved one can be reopened")
        with self.transaction() as db:
            db.execute("UPDATE conversations SET status = 'open', closed_at = NULL, assignee = ?, assigned_at = ? "
                       "WHERE id = ?", (agent, time.time(), conversation_id))  # fmt: skip
            self._open_handoff(db, conversation_id, f"reopened by agent {agent}")

    def mark_read(self, conversation_id: str, message_id: int) -> None:
        """An agent has seen the conversation up to `message_id`."""
        with self.transaction() as db:
            db.execute("UPDATE conversations SET read_id = ? WHERE id = ? AND read_id < ?",
                       (message_id, conversation_id, message_id))  # fmt: skip

    # -- feedback and review ------------------------------------------------------------------------------------
    def add_feedback(self, message_id: int, up: bool, comment: str | None = None) -> int:
        self.message(message_id)
        with self.transaction() as db:
            return db.insert(
                "INSERT INTO feedback (message_id, up, comment, created_at) VALUES (?, ?, ?, ?)",
                (message_id, int(bool(up)), self._clean(comment) if comment else None, time.time()),
            )  # fmt: skip

    def rate_as_customer(self, message_id: int, up: bool | None) -> None:
        """The customer's thumb on a message: it replaces their earlier one (None takes it back). Agents' feedback,
        which carries a comment, is left alone."""
        self.message(message_id)
        with self.transaction() as db:
            db.execute("DELETE FROM feedback WHERE message_id = ? AND comment IS NULL", (message_id,))
            if up is not None:
                db.execute("INSERT INTO feedback (message_id, up, comment, created_at) VALUES (?, ?, NULL, ?)",
                           (message_id, int(bool(up)), time.time()))  # fmt: skip

    def customer_ratings(self, conversation_id: str) -> dict[int, bool]:
        """The customer's thumbs in a conversation: message id -> up (the latest where there are several)."""
        rows = self._read(
            "SELECT f.message_id, f.up FROM feedback f JOIN messages m ON m.id = f.message_id "
            "WHERE m.conversation_id = ? AND f.comment IS NULL ORDER BY f.id",
            (conversation_id,),
        )
        return {int(r["message_id"]): bool(r["up"]) for r in rows}

    def recent_auto_sent(self, limit: int = 50) -> list[Message]:
        """Bot replies sent without review, newest first (for agents to rate or correct)."""
        rows = self._read(
            "SELECT * FROM messages WHERE role = 'bot' AND kind = 'reply' AND route = 'answer' "
            "ORDER BY id DESC LIMIT ?",
            (limit,),
        )
        return [_message(r) for r in rows]

    def reviewed_examples(self) -> list[dict[str, Any]]:
        """Training data from people: approved and edited drafts (the final text as target) and agents' replies in
        handed-off chats, each `{"id", "messages": [{"role", "content"}...], "source"}` in DESIGN.md's log format,
        with the conversation up to that reply as context. Texts as stored (redacted on the way in)."""
        out = []
        rows = self._read("SELECT * FROM messages WHERE role = 'agent' AND status = 'sent' ORDER BY id")
        for row in rows:
            context = self._read(
                "SELECT * FROM messages WHERE conversation_id = ? AND id < ? AND kind = 'reply' ORDER BY id",
                (row["conversation_id"], row["id"]),
            )
            turns = [
                {"role": "user" if m["role"] == "user" else "assistant", "content": m["text"]}
                for m in context
                if m["status"] == "sent"
            ]
            if not any(t["role"] == "user" for t in turns):
                continue
            source = "handoff"
            if row["draft_id"] is not None:
                source = self._read("SELECT state FROM drafts WHERE id = ?", (row["draft_id"],))[0]["state"]
            turns.append({"role": "assistant", "content": row["text"]})
            out.append({"id": f"{row['conversation_id']}-{row['id']}", "messages": turns, "source": source})
        return out

    def agent_replies_mark(self) -> tuple[int, int]:
        """How many replies agents have sent and the last one's id: it changes whenever `reviewed_examples` gains a
        reply (or loses one to pruning), so work derived from them can be kept until then."""
        row = self._read(
            "SELECT COUNT(*) AS n, COALESCE(MAX(id), 0) AS last FROM messages WHERE role = 'agent' AND status = 'sent'"
        )[0]
        return int(row["n"]), int(row["last"])

    def rejected_generations(self) -> list[dict[str, Any]]:
        """Generated replies that failed the claim check, as negative examples: `{"id", "messages" (the conversation
        up to the customer's message), "rejected", "reason", "sent", "faq_ids"}`. Texts as stored (redacted on the way
        in)."""
        out = []
        for row in self._read("SELECT * FROM messages WHERE role = 'bot' AND rejected_text IS NOT NULL ORDER BY id"):
            context = self._read(
                "SELECT role, text FROM messages WHERE conversation_id = ? AND id < ? AND kind = 'reply' "
                "AND status = 'sent' ORDER BY id",
                (row["conversation_id"], row["id"]),
            )
            turns = [{"role": "user" if m["role"] == "user" else "assistant", "content": m["text"]} for m in context]
            out.append({
                "id": f"{row['conversation_id']}-{row['id']}", "messages": turns, "rejected": row["rejected_text"],
                "reason": row["rejection"], "sent": row["text"], "faq_ids": json.loads(row["faq_ids"]),
            })  # fmt: skip
        return out

    # -- statistics ---------------------------------------------------------------------------------------------
    def stats(self, days: int = 30, top: int = 10, *, asks_for_person: Callable[[str], bool] | None = None,
              languages: Collection[str] | None = None) -> dict[str, Any]:  # fmt: skip
        """Figures for the admin page: per-day counts, route shares, draft approval/edit rate, thumbs, and the top
        customer questions that found no good source (`top_unanswered`, the handoff right after them).

        `asks_for_person(text)`: a request for a person (`chatbot.routing.asks_for_human`) is no FAQ gap; those are
        counted in `person_requests` instead. `languages`: the languages the bot answers in; questions in others
        are counted per language in `unsupported_languages` instead."""
        since = time.time() - days * 86400
        per_day = [dict(r) for r in self._read(
            f"SELECT {self.database.day('created_at')} AS day, COUNT(DISTINCT conversation_id) AS conversations, "
            "COUNT(*) AS messages FROM messages WHERE created_at >= ? GROUP BY day ORDER BY day",
            (since,))]  # fmt: skip
        routes = {r["route"]: r["n"] for r in self._read(
            "SELECT route, COUNT(*) AS n FROM messages WHERE role = 'bot' AND route IS NOT NULL AND created_at >= ? "
            "GROUP BY route", (since,))}  # fmt: skip
        total = sum(routes.values())
        drafts = {r["state"]: r["n"] for r in self._read("SELECT state, COUNT(*) AS n FROM drafts GROUP BY state")}
        reviewed = sum(drafts.get(s, 0) for s in ("approved", "edited", "rejected"))
        thumbs = {bool(r["up"]): r["n"] for r in self._read("SELECT up, COUNT(*) AS n FROM feedback GROUP BY up")}
        rejected = [dict(r) for r in self._read(
            "SELECT rejection AS reason, COUNT(*) AS n FROM messages WHERE role = 'bot' AND rejected_text IS NOT NULL "
            "AND created_at >= ? GROUP BY rejection ORDER BY n DESC", (since,))]  # fmt: skip
        # the customer's message right before the handoff (not an earlier one: "talk to a person" pressed after an
        # answer hands off with no source too)
        # each group's text as its newest message wrote it
        handed_off = self._read(
            "SELECT m.text AS question, g.language, g.n, g.last FROM (SELECT q.language AS language, COUNT(*) AS n, "
            "MAX(q.id) AS last FROM messages b JOIN messages q ON q.id = (SELECT MAX(id) FROM messages WHERE "
            "conversation_id = b.conversation_id AND id < b.id) WHERE q.role = 'user' AND b.role = 'bot' AND "
            "b.route = 'handoff' AND b.faq_ids = '[]' AND b.created_at >= ? GROUP BY lower(q.text), q.language) g "
            "JOIN messages m ON m.id = g.last ORDER BY g.n DESC, g.last DESC",
            (since,),
        )
        gaps: dict[str, dict[str, Any]] = {}
        person_requests, other_languages = 0, Counter()
        for r in handed_off:
            if asks_for_person is not None and asks_for_person(r["question"]):
                person_requests += r["n"]
            elif languages is not None and r["language"] and r["language"] not in languages:
                other_languages[r["language"]] += r["n"]
            else:
                gap = gaps.setdefault(r["question"].lower(), {"question": r["question"], "n": 0})
                gap["n"] += r["n"]
        unanswered = sorted(gaps.values(), key=lambda g: -g["n"])[:top]
        return {
            "per_day": per_day,
            "routes": {r: routes.get(r, 0) for r in ("answer", "draft", "handoff")},
            "route_share": {r: (routes.get(r, 0) / total if total else 0.0) for r in ("answer", "draft", "handoff")},
            "drafts": {s: drafts.get(s, 0) for s in ("pending", "approved", "edited", "rejected")},
            "approval_rate": (drafts.get("approved", 0) + drafts.get("edited", 0)) / reviewed if reviewed else None,
            "edit_rate": drafts.get("edited", 0) / reviewed if reviewed else None,
            "thumbs_up": thumbs.get(True, 0),
            "thumbs_down": thumbs.get(False, 0),
            "top_unanswered": unanswered,
            "person_requests": person_requests,
            "unsupported_languages": [{"language": lang, "n": n} for lang, n in other_languages.most_common()],
            "rejected": sum(r["n"] for r in rejected),
            "rejected_share": sum(r["n"] for r in rejected) / routes.get("answer", 0) if routes.get("answer") else 0.0,
            "rejection_reasons": rejected[:top],
        }

    # -- users and sessions -------------------------------------------------------------------------------------
    def add_user(self, name: str, role: Literal["agent", "admin"], password: str) -> User:
        if role not in ("agent", "admin"):
            raise StoreError(f"role must be agent or admin, got {role!r}")
        if not name.strip() or len(password) < 8:
            raise StoreError("a user needs a name and a password of at least 8 characters")
        created = time.time()
        try:
            with self.transaction() as db:
                db.execute("INSERT INTO users VALUES (?, ?, ?, ?)", (name, role, hash_password(password), created))
        except IntegrityError as exc:
            raise StoreError(f"user {name!r} already exists") from exc
        return User(name, role, created)

    def users(self) -> list[User]:
        return [User(r["name"], r["role"], r["created_at"]) for r in self._read("SELECT * FROM users ORDER BY name")]

    def authenticate(self, name: str, password: str) -> User | None:
        """The user when the password matches, else None. A hash made at another cost than `passwords.COST` (an
        older, weaker one) is replaced by a new one once the password matched."""
        rows = self._read("SELECT * FROM users WHERE name = ?", (name,))
        stored = rows[0]["password_hash"] if rows else passwords.dummy_hash()
        # an unknown name costs the same hash as a known one, so timing does not tell which names exist
        if not verify_password(password, stored) or not rows:
            return None
        if needs_rehash(stored):
            with self.transaction() as db:
                db.execute("UPDATE users SET password_hash = ? WHERE name = ? AND password_hash = ?",
                           (hash_password(password), name, stored))  # fmt: skip
        return User(rows[0]["name"], rows[0]["role"], rows[0]["created_at"])

    def create_session(self, name: str, ttl_s: float) -> str:
        """A new session for `name` lasting `ttl_s` seconds; returns its token (the store keeps only its digest).
        Expired sessions are purged here, at each login."""
        token = secrets.token_urlsafe(32)
        now = time.time()
        with self.transaction() as db:
            db.execute("DELETE FROM sessions WHERE expires_at <= ?", (now,))
            db.execute("INSERT INTO sessions VALUES (?, ?, ?, ?)", (token_digest(token), name, now, now + ttl_s))
        return token

    def session_user(self, token: str) -> User | None:
        """The user of an unexpired session, else None."""
        rows = self._read(
            "SELECT u.* FROM sessions s JOIN users u ON u.name = s.user_name WHERE s.token = ? AND s.expires_at > ?",
            (token_digest(token), time.time()),
        )
        return User(rows[0]["name"], rows[0]["role"], rows[0]["created_at"]) if rows else None

    def delete_session(self, token: str) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM sessions WHERE token = ?", (token_digest(token),))

    def purge_sessions(self) -> int:
        """Delete expired sessions; returns how many went (done at `warm_up` and at each login)."""
        with self.transaction() as db:
            return db.execute("DELETE FROM sessions WHERE expires_at <= ?", (time.time(),)).rowcount

    # -- state the workers share --------------------------------------------------------------------------------
    def set_typing(self, conversation_id: str, agent: str, at: float | None = None) -> None:
        """`agent` typed in `conversation_id`'s reply box at `at` (default now; Unix time, so every worker agrees).
        Marks older than an hour go."""
        at = time.time() if at is None else at
        with self.transaction() as db:
            db.execute("INSERT INTO agent_typing VALUES (?, ?, ?) ON CONFLICT (conversation_id, agent) "
                       "DO UPDATE SET at = excluded.at", (conversation_id, agent, at))  # fmt: skip
            db.execute("DELETE FROM agent_typing WHERE at < ?", (at - 3600,))

    def clear_typing(self, conversation_id: str, agent: str) -> None:
        """`agent` sent or left the conversation: no longer typing there."""
        with self.transaction() as db:
            db.execute("DELETE FROM agent_typing WHERE conversation_id = ? AND agent = ?", (conversation_id, agent))

    def typists(self, conversation_id: str, since: float) -> list[str]:
        """Agents who typed in `conversation_id` at or after `since` (Unix time), by name."""
        rows = self._read("SELECT agent FROM agent_typing WHERE conversation_id = ? AND at >= ? ORDER BY agent",
                          (conversation_id, since))  # fmt: skip
        return [r["agent"] for r in rows]

    @contextmanager
    def login_records(self, keys: Sequence[tuple[str, str]]) -> Iterator[dict[tuple[str, str], dict[str, float]]]:
        """The login throttle's records of `keys` (`("name", user_name)` or `("address", client_address)`), each
        `{"failures", "locks", "locked_until", "last_failure", "pending"}` (zeros for a new one), locked against every
        other worker until the block ends; then the changed values are written back (a record of zeros is deleted),
        or nothing is when the block raises."""
        keys = sorted(set(keys))  # one lock order everywhere: two workers never wait for each other's second row
        with self.transaction() as db:
            for kind, name in keys:
                db.execute("INSERT INTO login_throttle (kind, name) VALUES (?, ?) ON CONFLICT DO NOTHING", (kind, name))
            records = {}
            for kind, name in keys:
                row = db.execute(f"SELECT {', '.join(_THROTTLE_COLUMNS)} FROM login_throttle WHERE kind = ? "
                                 f"AND name = ?{self.database.for_update}", (kind, name)).fetchone()  # fmt: skip
                records[(kind, name)] = dict(row)
            yield records
            for (kind, name), r in records.items():
                values = [r[c] for c in _THROTTLE_COLUMNS]
                if not any(values):
                    db.execute("DELETE FROM login_throttle WHERE kind = ? AND name = ?", (kind, name))
                else:
                    db.execute(f"UPDATE login_throttle SET {', '.join(c + ' = ?' for c in _THROTTLE_COLUMNS)} "
                               "WHERE kind = ? AND name = ?", (*values, kind, name))  # fmt: skip

    def forget_login_records(self, quiet_since: float) -> int:
        """Delete the throttle's records with nothing in progress and neither a lock nor a failure since
        `quiet_since` (the throttle's clock); returns how many went."""
        with self.transaction() as db:
            return db.execute("DELETE FROM login_throttle WHERE pending = 0 AND locked_until < ? AND last_failure < ?",
                              (quiet_since, quiet_since)).rowcount  # fmt: skip


def copy_store(source: Store, target: Store) -> dict[str, int]:
    """Copy every row of `source` into `target` (e.g. a SQLite store into a new PostgreSQL one), ids, the
    conversation key (so customers' conversation secrets stay valid), users and sessions included, in one
    transaction on `target`. Both must be open with the same migrations applied; `target` must have no
    conversations or users yet. Returns the rows copied per table."""
    if source.applied_migrations() != target.applied_migrations():
        raise StoreError("the two stores have different migrations applied: open both with this version of the app "
                         "(warm_up() migrates) and copy again")  # fmt: skip
    if target.read("SELECT 1 FROM conversations LIMIT 1") or target.read("SELECT 1 FROM users LIMIT 1"):
        raise StoreError("the target store already has conversations or users: copy into an empty database")
    tables = [t for t in source.database.tables() if t != "_migrations"]
    copied = {}
    with target.transaction() as db:
        for table in reversed(tables):  # what the target's migrations wrote (its own conversation key)
            db.execute(f"DELETE FROM {table}")
        for table in tables:
            rows = source.read(f"SELECT * FROM {table}")
            if rows:
                columns = list(rows[0].keys())
                db.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                               [tuple(r) for r in rows])  # fmt: skip
            target.database.reset_ids(db, table)
            copied[table] = len(rows)
    target._conversation_key = None  # the source's key now
    return copied

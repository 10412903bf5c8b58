"""Password hashes and session tokens at rest (issue 17 item 14: scrypt n=2^14, plain session tokens, expired
sessions never purged)."""

from __future__ import annotations

import hashlib
import sqlite3
import time

import pytest

from chatbot import passwords
from chatbot.config import StoreConfig
from chatbot.passwords import ScryptCost, hash_password, needs_rehash, verify_password
from chatbot.store import MIGRATIONS, Store


@pytest.fixture
def store(chatbot_home, store_url):
    s = Store(StoreConfig(url=store_url)).warm_up()
    yield s
    s.close()


def test_the_default_cost_is_owasps(cheap_password_hashes):
    default = cheap_password_hashes  # the module's COST before the tests lowered it
    assert default == ScryptCost() and (default.n, default.r, default.p) == (2**17, 8, 1)
    assert passwords.COST.n < default.n
    started = time.perf_counter()
    stored = hash_password("correct horse", cost=default)
    assert time.perf_counter() - started > 0.05  # really 128 MiB of scrypt work, not the tests' cost
    assert stored.startswith("scrypt$131072$8$1$")
    assert verify_password("correct horse", stored) and not verify_password("correct horsf", stored)


def test_old_hashes_verify_and_are_replaced_at_login(store):
    salt = bytes(range(16))
    legacy = f"scrypt${salt.hex()}${hashlib.scrypt(b'ann-password-1', salt=salt, n=2**14, r=8, p=1).hex()}"
    assert verify_password("ann-password-1", legacy) and needs_rehash(legacy)
    store.add_user("ann", "agent", "placeholder-pw")
    with store.transaction() as db:
        db.execute("UPDATE users SET password_hash = ? WHERE name = 'ann'", (legacy,))

    assert store.authenticate("ann", "wrong-password") is None
    assert store._read("SELECT password_hash FROM users")[0][0] == legacy  # a failed login changes nothing
    assert store.authenticate("ann", "ann-password-1").name == "ann"
    rehashed = store._read("SELECT password_hash FROM users")[0][0]
    assert rehashed.startswith("scrypt$16$8$1$") and not needs_rehash(rehashed)
    assert store.authenticate("ann", "ann-password-1").name == "ann"


@pytest.mark.parametrize(
    "stored", ["", "scrypt", "scrypt$zz$00", "bcrypt$00$00", "scrypt$3$8$1$00$00", "scrypt$16$8$x$00$00", "$$$$$"]
)
def test_malformed_hashes_match_nothing(stored):
    assert not verify_password("anything", stored)
    assert needs_rehash(stored)


@pytest.mark.parametrize("cost", [{"n": 1000}, {"n": 1}, {"r": 0}, {"p": 0}])
def test_bad_costs_are_refused(cost):
    with pytest.raises(ValueError, match="power of two"):
        ScryptCost(**cost)


def test_session_tokens_are_stored_as_digests(store):
    store.add_user("ann", "agent", "ann-password-1")
    token = store.create_session("ann", 60)
    stored = [r[0] for r in store._read("SELECT token FROM sessions")]
    assert token not in stored and stored == [hashlib.sha256(token.encode()).hexdigest()]
    assert store.session_user(token).name == "ann"
    assert store.session_user(stored[0]) is None  # the digest itself (e.g. from a stolen copy) opens nothing
    store.delete_session(token)
    assert store.session_user(token) is None and not store._read("SELECT * FROM sessions")


def test_sessions_made_before_the_migration_keep_working(chatbot_home):
    path = chatbot_home / "old.sqlite3"
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied_at REAL NOT NULL)")
    for name, fn in MIGRATIONS[: [n for n, _ in MIGRATIONS].index("m004_session_token_digests")]:
        fn(db)
        db.execute("INSERT INTO _migrations VALUES (?, ?)", (name, time.time()))
    db.execute("INSERT INTO users VALUES ('ann', 'agent', ?, 0)", (hash_password("ann-password-1"),))
    db.execute("INSERT INTO sessions VALUES ('plain-old-token', 'ann', 0, ?)", (time.time() + 60,))
    db.close()

    store = Store(path=path).warm_up()
    assert store.session_user("plain-old-token").name == "ann"
    assert [r[0] for r in store._read("SELECT token FROM sessions")] != ["plain-old-token"]


def test_expired_sessions_are_purged(store, store_url):
    store.add_user("ann", "agent", "ann-password-1")
    with store.transaction() as db:
        db.executemany("INSERT INTO sessions VALUES (?, 'ann', 0, ?)", [("a", 1.0), ("b", time.time() - 1)])
    live = store.create_session("ann", 60)  # a login purges the expired ones
    assert len(store._read("SELECT * FROM sessions")) == 1 and store.session_user(live).name == "ann"
    with store.transaction() as db:
        db.execute("INSERT INTO sessions VALUES ('c', 'ann', 0, 1.0)")
    assert store.purge_sessions() == 1 and store.session_user(live).name == "ann"
    assert store.purge_sessions() == 0
    with store.transaction() as db:
        db.execute("INSERT INTO sessions VALUES ('d', 'ann', 0, 1.0)")
    store.close()
    reopened = Store(StoreConfig(url=store_url)).warm_up()  # a server start purges too
    assert len(reopened._read("SELECT * FROM sessions")) == 1
    reopened.close()

"""Brute-force protection for the login form: after a number of failed logins a user name, or a client address, is
locked for a while, and every attempt during the lock is refused before any password is checked.

Each further lock of the same name or address lasts twice as long (at most `MAX_DOUBLINGS` times), until a
successful login (for a name) or a quiet spell as long as the next lock would be.

The counts live in this process, or with a store in the store (`chatbot.store.Store.login_records`), where every
worker on it counts the same failures: several workers must not give a guesser several times the attempts.
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

MAX_DOUBLINGS = 6
"""A lock lasts at most `lockout_s * 2**MAX_DOUBLINGS` (64 times the first)."""
MAX_RECORDS = 10_000
"""Above this many tracked names and addresses, the unlocked and quiet ones are forgotten."""
FORGET_EVERY = 1000
"""With a store: every this many attempts, the quiet records are deleted from it."""

Key = tuple[str, str]


@dataclass
class _Record:
    failures: int = 0
    locks: int = 0
    locked_until: float = 0.0
    last_failure: float = 0.0
    pending: int = 0


class LoginThrottle:
    """Counts failed logins per user name and per client address (thread-safe; in this process, or in `store` for
    every process on it).

    `max_failures` failures of one name, or `max_address_failures` from one address, lock it for `lockout_s`
    seconds. `clock`: seconds, monotonic in this process, Unix time with a store (tests pass their own).
    """

    def __init__(self, max_failures: int, max_address_failures: int, lockout_s: float,
                 clock: Callable[[], float] | None = None, store: Any = None):  # fmt: skip
        if min(max_failures, max_address_failures) < 1 or lockout_s <= 0:
            raise ValueError("login throttling needs failure counts >= 1 and lockout_s > 0 (limits.login_*)")
        self.limits = {"name": max_failures, "address": max_address_failures}
        self.lockout_s = lockout_s
        self.store = store
        self.clock = clock or (time.monotonic if store is None else time.time)
        self._records: dict[Key, _Record] = {}
        self._lock = threading.Lock()
        self._attempts = 0

    def begin(self, name: str, address: str) -> int:
        """Whole seconds until `name` may try again from `address`, or 0: go ahead, and report the outcome with
        `finish`. Attempts in progress count against the limit, so parallel guesses cannot pass it either."""
        now = self.clock()
        with self._held(name, address, now) as records:
            until = max(r.locked_until for r in records.values())
            if until > now:
                return math.ceil(until - now)
            if any(r.failures + r.pending >= self.limits[key[0]] for key, r in records.items()):
                return 1  # the attempts in progress may lock it: wait for their outcome
            for record in records.values():
                record.pending += 1
        return 0

    def finish(self, name: str, address: str, ok: bool) -> None:
        """The outcome of an attempt `begin` let through. A failure counts against the name and the address, and
        locks each that reaches its limit; a success clears the name's record (the address keeps its count: one
        good account must not reset the guessing of others from the same address)."""
        now = self.clock()
        with self._held(name, address, now) as records:
            for key, record in records.items():
                record.pending = max(record.pending - 1, 0)
                if ok:
                    continue
                record.failures += 1
                record.last_failure = now
                if record.failures >= self.limits[key[0]]:
                    record.locked_until = now + self.lockout_s * 2 ** min(record.locks, MAX_DOUBLINGS)
                    record.locks += 1
                    record.failures = 0
            if ok:
                records[("name", name)] = _Record()

    @contextmanager
    def _held(self, name: str, address: str, now: float) -> Iterator[dict[Key, _Record]]:
        """The name's and the address's records (fresh ones for quiet records), for this thread and, with a store,
        this process alone until the block ends; then kept (a record back at zero is dropped)."""
        keys = (("name", name), ("address", address))
        if self.store is None:
            with self._lock:
                records = {key: self._fresh(self._records.get(key, _Record()), now) for key in keys}
                yield records
                for key, record in records.items():
                    if record == _Record():
                        self._records.pop(key, None)
                    else:
                        self._records[key] = record
                if len(self._records) > MAX_RECORDS:
                    self._forget(now)
            return
        with self.store.login_records(keys) as stored:
            records = {key: self._fresh(_Record(**stored[key]), now) for key in keys}
            yield records
            for key, record in records.items():
                stored[key].update(dataclasses.asdict(record))
        with self._lock:
            self._attempts += 1
            forget = self._attempts % FORGET_EVERY == 0
        if forget:  # records quiet even after the longest lock (any record's next lock is at most that)
            self.store.forget_login_records(now - self.lockout_s * 2**MAX_DOUBLINGS)

    def _quiet(self, record: _Record, now: float) -> bool:
        """Unlocked, no attempt in progress, and without failures for as long as its next lock would last."""
        next_lock = self.lockout_s * 2 ** min(record.locks, MAX_DOUBLINGS)
        return not record.pending and now >= record.locked_until and now - record.last_failure > next_lock

    def _fresh(self, record: _Record, now: float) -> _Record:
        return _Record() if self._quiet(record, now) else record

    def _forget(self, now: float) -> None:
        for key in [k for k, r in self._records.items() if self._quiet(r, now)]:
            del self._records[key]

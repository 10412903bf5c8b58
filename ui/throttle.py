"""Brute-force protection for the login form: after a number of failed logins a user name, or a client address, is
locked for a while, and every attempt during the lock is refused before any password is checked.

Each further lock of the same name or address lasts twice as long (at most `MAX_DOUBLINGS` times), until a
successful login (for a name) or a quiet spell as long as the next lock would be.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

MAX_DOUBLINGS = 6
"""A lock lasts at most `lockout_s * 2**MAX_DOUBLINGS` (64 times the first)."""
MAX_RECORDS = 10_000
"""Above this many tracked names and addresses, the unlocked and quiet ones are forgotten."""


@dataclass
class _Record:
    failures: int = 0
    locks: int = 0
    until: float = 0.0
    last: float = 0.0
    pending: int = 0


class LoginThrottle:
    """Counts failed logins per user name and per client address (thread-safe, in this process).

    `max_failures` failures of one name, or `max_address_failures` from one address, lock it for `lockout_s`
    seconds. `clock` is monotonic seconds (tests pass their own).
    """

    def __init__(self, max_failures: int, max_address_failures: int, lockout_s: float,
                 clock: Callable[[], float] = time.monotonic):  # fmt: skip
        if min(max_failures, max_address_failures) < 1 or lockout_s <= 0:
            raise ValueError("login throttling needs failure counts >= 1 and lockout_s > 0 (limits.login_*)")
        self.limits = {"name": max_failures, "address": max_address_failures}
        self.lockout_s = lockout_s
        self.clock = clock
        self._records: dict[tuple[str, str], _Record] = {}
        self._lock = threading.Lock()

    def begin(self, name: str, address: str) -> int:
        """Whole seconds until `name` may try again from `address`, or 0: go ahead, and report the outcome with
        `finish`. Attempts in progress count against the limit, so parallel guesses cannot pass it either."""
        now = self.clock()
        with self._lock:
            records = [(key, self._current(key, now)) for key in self._keys(name, address)]
            until = max(r.until for _, r in records)
            if until > now:
                return math.ceil(until - now)
            if any(r.failures + r.pending >= self.limits[key[0]] for key, r in records):
                return 1  # the attempts in progress may lock it: wait for their outcome
            for _, record in records:
                record.pending += 1
            if len(self._records) > MAX_RECORDS:
                self._forget(now)
        return 0

    def finish(self, name: str, address: str, ok: bool) -> None:
        """The outcome of an attempt `begin` let through. A failure counts against the name and the address, and
        locks each that reaches its limit; a success clears the name's record (the address keeps its count: one
        good account must not reset the guessing of others from the same address)."""
        now = self.clock()
        with self._lock:
            for key in self._keys(name, address):
                record = self._current(key, now)
                record.pending = max(record.pending - 1, 0)
                if ok:
                    continue
                record.failures += 1
                record.last = now
                if record.failures >= self.limits[key[0]]:
                    record.until = now + self.lockout_s * 2 ** min(record.locks, MAX_DOUBLINGS)
                    record.locks += 1
                    record.failures = 0
            if ok:
                self._records.pop(("name", name), None)

    @staticmethod
    def _keys(name: str, address: str) -> tuple[tuple[str, str], ...]:
        return ("name", name), ("address", address)

    def _quiet(self, record: _Record, now: float) -> bool:
        """Unlocked, no attempt in progress, and without failures for as long as its next lock would last."""
        next_lock = self.lockout_s * 2 ** min(record.locks, MAX_DOUBLINGS)
        return not record.pending and now >= record.until and now - record.last > next_lock

    def _current(self, key: tuple[str, str], now: float) -> _Record:
        record = self._records.get(key)
        if record is None or self._quiet(record, now):
            record = self._records[key] = _Record()
        return record

    def _forget(self, now: float) -> None:
        for key in [k for k, r in self._records.items() if self._quiet(r, now)]:
            del self._records[key]

"""Password hashing (scrypt at OWASP's cost) and session-token digests, for the store's users and sessions.

A hash is `scrypt$<n>$<r>$<p>$<salt hex>$<hash hex>`. Hashes from before issue 17 (`scrypt$<salt>$<hash>`, n=2^14)
still verify; `needs_rehash` tells the store to replace one at the next successful login.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
import threading
from dataclasses import dataclass


@dataclass(frozen=True)
class ScryptCost:
    """scrypt's parameters: CPU/memory cost `n` (a power of two), block size `r`, parallelism `p`."""

    n: int = 2**17
    r: int = 8
    p: int = 1

    def __post_init__(self) -> None:
        if self.n < 2 or self.n & (self.n - 1) or self.r < 1 or self.p < 1:
            raise ValueError(f"scrypt needs n a power of two >= 2 and r, p >= 1, got {self}")

    @property
    def maxmem(self) -> int:
        """OpenSSL's memory cap for one hash: twice the 128·n·r bytes scrypt works in (its default cap, 32 MiB,
        refuses n=2^17)."""
        return 2 * 128 * self.n * self.r * self.p


COST = ScryptCost()
"""The cost new hashes get: OWASP's n=2^17, r=8, p=1 (about 128 MiB and 0.3 s each). Tests lower it."""
LEGACY_COST = ScryptCost(n=2**14)
"""The cost of hashes in the old three-field format."""
MAX_CONCURRENT_HASHES = 4
"""At most this many hashes run at once (each takes 128 MiB), so a burst of logins cannot exhaust memory."""
_slots = threading.BoundedSemaphore(MAX_CONCURRENT_HASHES)


def _scrypt(password: str, salt: bytes, cost: ScryptCost) -> bytes:
    with _slots:
        return hashlib.scrypt(password.encode(), salt=salt, n=cost.n, r=cost.r, p=cost.p, maxmem=cost.maxmem)


def hash_password(password: str, salt: bytes | None = None, cost: ScryptCost | None = None) -> str:
    """A new scrypt hash of `password` at `cost` (default `COST`) as `scrypt$<n>$<r>$<p>$<salt>$<hash>`."""
    cost = cost or COST
    salt = salt or secrets.token_bytes(16)
    digest = _scrypt(password, salt, cost)
    return f"scrypt${cost.n}${cost.r}${cost.p}${salt.hex()}${digest.hex()}"


def _parse(stored: str) -> tuple[ScryptCost, bytes, bytes] | None:
    parts = stored.split("$")
    try:
        if len(parts) == 3 and parts[0] == "scrypt":
            return LEGACY_COST, bytes.fromhex(parts[1]), bytes.fromhex(parts[2])
        if len(parts) == 6 and parts[0] == "scrypt":
            cost = ScryptCost(int(parts[1]), int(parts[2]), int(parts[3]))
            return cost, bytes.fromhex(parts[4]), bytes.fromhex(parts[5])
    except ValueError:
        return None
    return None


def verify_password(password: str, stored: str) -> bool:
    """Whether `password` matches `stored` (either format; constant-time comparison; False for a malformed hash)."""
    parsed = _parse(stored)
    if parsed is None:
        return False
    cost, salt, digest = parsed
    return hmac.compare_digest(_scrypt(password, salt, cost), digest)


def needs_rehash(stored: str) -> bool:
    """Whether `stored` was made at another cost (or in the old format) than `COST` gives now."""
    parsed = _parse(stored)
    return parsed is None or len(stored.split("$")) != 6 or parsed[0] != COST


@functools.cache
def _dummy_hash(cost: ScryptCost) -> str:
    return hash_password(secrets.token_urlsafe(16), cost=cost)


def dummy_hash() -> str:
    """A hash at the current cost that no password matches: unknown user names are checked against it, so a login's
    timing does not tell which names exist. Made once per cost, on first use."""
    return _dummy_hash(COST)


def token_digest(token: str) -> str:
    """What the store keeps of a session token: its SHA-256 (hex), so a copy of the database opens no session."""
    return hashlib.sha256(token.encode()).hexdigest()

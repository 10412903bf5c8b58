"""Login throttling (issue 17 item 5: 50 wrong passwords at a steady pace, then the right one worked), with the
counts in the process and in the store (SQLite and PostgreSQL), where several workers share them (issue 13)."""

from __future__ import annotations

import pytest

from chatbot.config import StoreConfig
from chatbot.store import Store
from ui.throttle import FORGET_EVERY, MAX_DOUBLINGS, LoginThrottle


def _factory(request):
    store = None
    if request.param != "memory":
        url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
        store = Store(StoreConfig(url=url)).warm_up()
    yield lambda *args: LoginThrottle(*args, store=store)
    if store is not None:
        store.close()


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def make(request):
    """`make(max_failures, max_address_failures, lockout_s, clock)`: a throttle keeping its counts in this process,
    or in a store."""
    yield from _factory(request)


@pytest.fixture(params=["sqlite", "postgresql"])
def make_on_store(request):
    """Like `make`, in a store only; every throttle made by one `make_on_store` shares it, like workers on one
    database."""
    yield from _factory(request)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def fail(throttle: LoginThrottle, name: str, address: str = "10.0.0.1") -> int:
    wait = throttle.begin(name, address)
    if not wait:
        throttle.finish(name, address, ok=False)
    return wait


def test_a_name_is_locked_after_its_failures_and_each_lock_lasts_twice_as_long(make):
    clock = Clock()
    throttle = make(3, 100, 60, clock)
    assert [fail(throttle, "ann") for _ in range(5)] == [0, 0, 0, 60, 60]
    assert throttle.begin("ann", "10.9.9.9") == 60  # the name is locked from any address
    assert throttle.begin("bob", "10.0.0.1") == 0  # others are not
    throttle.finish("bob", "10.0.0.1", ok=True)
    clock.now += 60
    assert [fail(throttle, "ann") for _ in range(4)] == [0, 0, 0, 120]
    clock.now += 120
    assert throttle.begin("ann", "10.0.0.1") == 0
    throttle.finish("ann", "10.0.0.1", ok=True)  # a success clears the name's record
    assert [fail(throttle, "ann") for _ in range(4)] == [0, 0, 0, 60]


def test_locks_stop_doubling_and_quiet_records_are_forgotten(make):
    clock = Clock()
    throttle = make(1, 100, 10, clock)
    for _ in range(MAX_DOUBLINGS + 3):
        assert fail(throttle, "ann") == 0
        clock.now += throttle.begin("ann", "10.0.0.1")
    assert fail(throttle, "ann") == 0 and throttle.begin("ann", "10.0.0.1") == 10 * 2**MAX_DOUBLINGS
    clock.now += 10 * 2**MAX_DOUBLINGS * 2 + 1  # quiet for as long as the next lock would be
    assert fail(throttle, "ann") == 0 and throttle.begin("ann", "10.0.0.1") == 10


def test_an_address_is_locked_after_failures_on_many_names(make):
    throttle = make(5, 4, 30, Clock())
    assert [fail(throttle, f"user{i}") for i in range(5)] == [0, 0, 0, 0, 30]
    assert throttle.begin("someone-else", "10.0.0.1") == 30
    assert throttle.begin("someone-else", "10.0.0.2") == 0


def test_attempts_in_progress_count_against_the_limit(make):
    throttle = make(2, 100, 30, Clock())
    assert throttle.begin("ann", "10.0.0.1") == 0
    assert throttle.begin("ann", "10.0.0.2") == 0
    assert throttle.begin("ann", "10.0.0.3") == 1  # two guesses are already being checked
    throttle.finish("ann", "10.0.0.1", ok=False)
    throttle.finish("ann", "10.0.0.2", ok=False)
    assert throttle.begin("ann", "10.0.0.3") == 30


@pytest.mark.parametrize(("failures", "address_failures", "lockout_s"), [(0, 5, 10), (5, 0, 10), (5, 5, 0)])
def test_bad_settings_are_refused(failures, address_failures, lockout_s):
    with pytest.raises(ValueError, match="limits.login_"):
        LoginThrottle(failures, address_failures, lockout_s)


def test_workers_on_one_store_count_the_same_failures(make_on_store):
    clock = Clock()
    one, other = make_on_store(3, 100, 60, clock), make_on_store(3, 100, 60, clock)
    assert [fail(w, "ann") for w in (one, other, one, other)] == [0, 0, 0, 60]  # not 3 guesses per worker
    assert one.begin("ann", "10.9.9.9") == 60


def test_quiet_records_leave_the_store(make_on_store):
    clock = Clock()
    throttle = make_on_store(5, 100, 10, clock)
    fail(throttle, "ann")  # two attempts: begin and finish
    clock.now += 10 * 2**MAX_DOUBLINGS + 1  # quiet after the longest lock
    for i in range(FORGET_EVERY - 3):
        throttle.finish(f"user{i % 3}", "10.0.0.2", ok=True)  # attempts that leave no record
    assert [r["name"] for r in throttle.store.read("SELECT name FROM login_throttle")] == ["10.0.0.1", "ann"]
    throttle.finish("bob", "10.0.0.2", ok=True)  # the FORGET_EVERY-th attempt forgets the quiet ones
    assert throttle.store.read("SELECT name FROM login_throttle") == []

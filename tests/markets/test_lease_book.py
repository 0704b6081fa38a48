"""Lease books on the suite's real mongod (majority concerns, the database's clock): three workers partition 200
keys exactly; one that stops renewing loses them after the lease and the others take them all over within the
lease and one round, moving each fencing token on; a newcomer gets its share in a few rounds; a clean stop hands
over at once; one worker holds the trading singleton; a worker with a wildly wrong clock steals nothing.

Leases last 2 s and rounds run every 0.5 s here (15 s and 3 s by default)."""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC
from typing import Any, NamedTuple

import pytest
from django.db import connection
from pymongo import MongoClient
from pymongo.database import Database
from pymongo.errors import PyMongoError

from markets.leases import LEASES, WORKERS, LeaseBook
from tests.tradingsite.test_env import clean_env, settings_value
from tradingsite.devstack import free_port

LEASE = 2.0
RENEW = 0.5
KEYS = frozenset(f"SYM{i:03d}USDT" for i in range(200))


@pytest.fixture
def database(db: None) -> Iterator[Database[Any]]:
    """The test database, without leases or heartbeats left by another test."""
    database = connection.database
    for name in (LEASES, WORKERS):
        database.drop_collection(name)
    yield database
    for name in (LEASES, WORKERS):
        database.drop_collection(name)


def book(database: Database[Any], me: str, **options: Any) -> LeaseBook:
    return LeaseBook(lambda: database, group="binance", me=me, lease_seconds=LEASE, renew_seconds=RENEW, **options)


def started(database: Database[Any], *names: str) -> list[LeaseBook]:
    """Books that each heartbeat, then each rebalance once: the group settled."""
    books = [book(database, name) for name in names]
    for b in books:
        b.renew()
    for b in books:
        b.rebalance(KEYS)
    return books


class Rounds(NamedTuple):
    seconds: float
    count: int
    longest: float  # the longest pass (every book once): a bound on "one round" must allow for it


def rounds(books: list[LeaseBook], until: Callable[[], object], seconds: float) -> Rounds:
    """Rounds as the stream runs them (each book rebalances over KEYS, every RENEW seconds) until ``until()``
    holds after one. Fails after ``seconds``."""
    start = time.monotonic()
    n, longest = 0, 0.0
    while True:
        began = time.monotonic()
        for b in books:
            b.rebalance(KEYS)
        longest = max(longest, time.monotonic() - began)
        n += 1
        if until():
            return Rounds(time.monotonic() - start, n, longest)
        assert time.monotonic() - start < seconds, f"not after {n} rounds: {[len(b.held) for b in books]}"
        time.sleep(RENEW)  # the pace of the rounds, as in the stream


def stored(database: Database[Any]) -> dict[str, dict[str, Any]]:
    """The live leases of the group as the database has them, by key."""
    live = {"group": "binance", "owner": {"$ne": None}, "$expr": {"$gt": ["$expires", "$$NOW"]}}
    return {d["key"]: d for d in database[LEASES].find(live)}


def assert_partition(database: Database[Any], books: list[LeaseBook]) -> None:
    """Every key held by exactly one of ``books``, as each book says and as the database says; shares within one."""
    held = [b.held for b in books]
    assert sum(len(h) for h in held) == len(KEYS)
    assert frozenset().union(*held) == KEYS
    assert max(map(len, held)) - min(map(len, held)) <= 1, [len(h) for h in held]
    assert {k: d["owner"] for k, d in stored(database).items()} == {k: b.me for b in books for k in b.held}


def test_three_workers_partition_two_hundred_keys_exactly(database: Database[Any]) -> None:
    """After one round each, three workers hold 67, 67 and 66 of 200 keys, each key once, each lease with token 1;
    renewing changes no token."""
    books = started(database, "a", "b", "c")
    assert sorted(len(b.held) for b in books) == [66, 67, 67]
    assert_partition(database, books)
    rounds(books, lambda: True, 5)
    assert_partition(database, books)
    assert {d["token"] for d in stored(database).values()} == {1}


def test_a_dead_workers_keys_are_taken_over_within_the_lease_and_one_round(database: Database[Any]) -> None:
    """Worker c stops renewing. Nobody takes its keys before its lease runs out; a and b hold all 200 within
    LEASE + RENEW of c's last renewal (100 each), each key taken with its token moved to 2. When c renews again it
    learns it lost them all."""
    a, b, c = started(database, "a", "b", "c")
    theirs = c.held
    sent = time.monotonic()
    c.renew()
    waited = rounds([a, b], lambda: (a.held | b.held) & theirs, 3 * LEASE)
    first = time.monotonic() - sent
    assert first >= LEASE - 0.01, f"a key of c's taken {first:.2f} s after its last renewal"
    longest = max(waited.longest, rounds([a, b], lambda: a.held | b.held == KEYS, LEASE).longest)
    took = time.monotonic() - sent
    print(f"takeover of {len(theirs)} keys: first {first:.2f} s, all {took:.2f} s after the last renewal")
    assert took <= LEASE + RENEW + 2 * longest + 0.05  # the pass running at expiry, and the one after
    assert_partition(database, [a, b])
    tokens = {k: d["token"] for k, d in stored(database).items()}
    assert {tokens[k] for k in theirs} == {2}
    assert {tokens[k] for k in KEYS - theirs} == {1}

    change = c.renew()
    assert change.lost == theirs
    assert change.held == frozenset()
    assert change.gained == frozenset()


def test_a_newcomer_gets_its_share_in_a_few_rounds(database: Database[Any]) -> None:
    """Two workers hold 100 keys each; a third starts. The holders give back at most a quarter of what they hold a
    round, and within three rounds the shares are 67, 67 and 66, each key held once."""
    a, b = started(database, "a", "b")
    newcomer = book(database, "n")
    before = {a.me: len(a.held), b.me: len(b.held)}
    newcomer.renew()
    a.rebalance(KEYS)
    b.rebalance(KEYS)
    assert before[a.me] - len(a.held) <= 25
    assert before[b.me] - len(b.held) <= 25
    seconds, n, _ = rounds([a, b, newcomer], lambda: sorted(len(x.held) for x in (a, b, newcomer)) == [66, 67, 67], 10)
    print(f"newcomer at its share after {n + 1} rounds ({seconds:.2f} s at one round every {RENEW} s)")
    assert n + 1 <= 3
    assert_partition(database, [a, b, newcomer])


def test_a_clean_stop_hands_over_at_once(database: Database[Any]) -> None:
    """c stops cleanly (release_all): its heartbeat and leases are gone at once, and one round of a and b takes
    all its keys over, long before its lease would have run out."""
    a, b, c = started(database, "a", "b", "c")
    theirs, start = c.held, time.monotonic()
    assert c.release_all() == theirs
    a.rebalance(KEYS)
    b.rebalance(KEYS)
    assert time.monotonic() - start < LEASE / 2
    assert_partition(database, [a, b])
    assert database[WORKERS].count_documents({"worker": "c"}) == 0


def test_keys_leaving_the_set_are_given_back_and_new_ones_taken(database: Database[Any]) -> None:
    """A worker alone takes all keys; when 20 leave the set and one joins, its next round loses those 20 and
    gains the new one."""
    (a,) = started(database, "a")
    gone = frozenset(sorted(KEYS)[:20])
    change = a.rebalance((KEYS - gone) | {"NEWUSDT"})
    assert change.lost == gone
    assert change.gained == {"NEWUSDT"}
    assert len(change.held) == 181
    assert gone.isdisjoint(stored(database))


def test_one_worker_holds_the_trading_singleton_and_a_late_one_is_fenced_off(database: Database[Any]) -> None:
    """Of three workers exactly one holds "trading" (token 1), renewing keeps the token; when it stops renewing,
    another takes it only after its fence's local deadline, with token 2; the old fence no longer confirms."""
    a, b, c = (book(database, name) for name in "abc")
    fences = [x.hold_singleton("trading") for x in (a, b, c)]
    assert fences[0] is not None
    assert fences[1:] == [None, None]
    fence = a.hold_singleton("trading")
    assert fence is not None
    assert fence.token == 1
    assert a.valid(fence)
    assert a.confirm(fence)

    def taken() -> bool:
        return any([b.hold_singleton("trading"), c.hold_singleton("trading")])

    start = time.monotonic()
    while not taken():
        assert time.monotonic() - start < 3 * LEASE
        time.sleep(RENEW)  # the pace of the rounds
    assert time.monotonic() >= fence.deadline, "taken while the old holder still trusted its fence"
    holders = [f for f in (b.hold_singleton("trading"), c.hold_singleton("trading")) if f is not None]
    assert len(holders) == 1
    assert holders[0].token == 2
    assert not a.valid(fence)
    assert not a.confirm(fence)
    assert not a.confirm(dataclasses.replace(fence, deadline=math.inf)), "the database shows another owner"
    assert (b if holders[0].owner == b.me else c).confirm(holders[0])
    assert a.hold_singleton("trading") is None


def test_a_wildly_wrong_local_clock_steals_nothing(database: Database[Any]) -> None:
    """Expiry is the database's: a worker whose clock is days ahead or behind takes none of a live worker's
    keys nor its singleton, and every stored expiry is the database's time plus the lease."""
    (a,) = started(database, "a")
    assert a.hold_singleton("trading") is not None
    for skew in (+3 * 86400.0, -3 * 86400.0):
        skewed = book(database, f"skewed{skew:+.0f}", clock=lambda skew=skew: time.monotonic() + skew)
        skewed.renew()
        change = skewed.rebalance(KEYS)
        assert change.held == frozenset()
        assert skewed.hold_singleton("trading") is None
        skewed.release_all()
    assert a.rebalance(KEYS).held == KEYS
    server_now = database.command("hello")["localTime"].replace(tzinfo=UTC)
    for doc in database[LEASES].find({"owner": "a"}):
        ahead = (doc["expires"].replace(tzinfo=UTC) - server_now).total_seconds()
        assert 0 < ahead <= LEASE, (doc["_id"], ahead)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"group": "bin:ance"}, "group='bin:ance'"),
        ({"group": "singleton"}, "group='singleton'"),
        ({"group": "binance", "lease_seconds": 2.0, "renew_seconds": 1.5}, "renew_seconds=1.5"),
    ],
)
def test_bad_settings_are_refused_by_name(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LeaseBook(lambda: connection.database, **options)


def test_settings_refuse_a_renewal_slower_than_half_the_lease() -> None:
    """STREAM_LEASE_RENEW_SECONDS above half of STREAM_LEASE_SECONDS stops the process naming both; the defaults
    are 15 s and 3 s."""
    bad = settings_value("STREAM_LEASE_SECONDS", clean_env(STREAM_LEASE_SECONDS="10", STREAM_LEASE_RENEW_SECONDS="6"))
    assert bad.returncode != 0
    assert "STREAM_LEASE_RENEW_SECONDS=6: expected at most half of STREAM_LEASE_SECONDS (10)" in bad.stderr
    assert settings_value("STREAM_LEASE_SECONDS", clean_env()).stdout.strip() == "15.0"
    assert settings_value("STREAM_LEASE_RENEW_SECONDS", clean_env()).stdout.strip() == "3.0"


def test_three_workers_started_at_once_on_their_own_threads_settle(database: Database[Any]) -> None:
    """Three workers started at the same moment, each rounding on its own thread (their rounds race in the
    database): within 10 s they hold disjoint shares of 67, 67 and 66 covering every key, as the database says."""
    books = [book(database, name) for name in ("a", "b", "c")]
    stop = threading.Event()
    start = threading.Barrier(len(books))
    failures: list[BaseException] = []

    def work(b: LeaseBook) -> None:
        start.wait()
        try:
            while not stop.is_set():
                b.rebalance(KEYS)
                stop.wait(RENEW)
        except BaseException as exc:  # reported by the test below
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(b,), daemon=True) for b in books]
    for t in threads:
        t.start()
    try:
        began = time.monotonic()
        while sorted(len(b.held) for b in books) != [66, 67, 67] and not failures:
            assert time.monotonic() - began < 10, [len(b.held) for b in books]
            time.sleep(0.05)  # the workers' threads do the work; this only watches
        print(f"three racing workers settled in {time.monotonic() - began:.2f} s")
    finally:
        stop.set()
        for t in threads:
            t.join(5)
    assert not failures, failures
    assert_partition(database, books)


def test_a_round_against_a_database_that_does_not_answer_fails_within_half_the_lease() -> None:
    """With no database to answer, a round raises a PyMongoError within half the lease (plus a little), and the
    book still reports what it held before: it never hangs past the lease."""
    client: MongoClient[Any] = MongoClient(f"mongodb://127.0.0.1:{free_port()}/?serverSelectionTimeoutMS=60000")
    try:
        b = LeaseBook(lambda: client["nowhere"], group="binance", lease_seconds=LEASE, renew_seconds=RENEW)
        began = time.monotonic()
        with pytest.raises(PyMongoError):
            b.rebalance(KEYS)
        assert time.monotonic() - began < LEASE / 2 + 0.5
        assert b.held == frozenset()
    finally:
        client.close()

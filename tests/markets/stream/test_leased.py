"""A leased worker's source, on the suite's real mongod: it streams "streamed ∩ held" (two workers split the
streamed instruments, each streams only its own, a removed one stops at once), the traded symbols go to whoever
holds the trading lease, whose fence gates the trader; a failed round changes nothing; a clean stop hands over at
the other's next round. Leases last 2 s and rounds are driven by hand here."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection
from pymongo.database import Database

from markets.leases import LEASES, WORKERS, LeaseBook
from markets.stream.leased import LeasedSource, trading_lease

LEASE = 2.0
SYMBOLS = tuple(f"SYM{i:02d}USDT" for i in range(10))


class Clock:
    """A monotonic clock moved by hand (for the fence's local deadline)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def database(db: None) -> Iterator[Database[Any]]:
    database = connection.database
    for name in (LEASES, WORKERS):
        database.drop_collection(name)
    yield database
    for name in (LEASES, WORKERS):
        database.drop_collection(name)


class Instruments:
    """The streamed instruments, changed by the test; ``fail`` makes reading them raise."""

    def __init__(self, symbols: tuple[str, ...]) -> None:
        self.symbols = symbols
        self.fail = False

    def __call__(self) -> tuple[tuple[str, ...], str]:
        if self.fail:
            raise ConnectionError("the database is down")
        return self.symbols, ""


def worker(database: Database[Any], me: str, instruments: Instruments, **options: Any) -> LeasedSource:
    clock = options.pop("clock", None)
    book = LeaseBook(
        lambda: database,
        group="binance",
        me=me,
        lease_seconds=LEASE,
        renew_seconds=0.5,
        **({"clock": clock} if clock else {}),
    )
    return LeasedSource("binance", instruments, book, **options)


def settle(*workers: LeasedSource, rounds: int = 8) -> list[tuple[str, ...]]:
    answers: list[tuple[str, ...]] = []
    for _ in range(rounds):
        answers = [w.round()[0] for w in workers]
    return answers


def test_two_workers_stream_what_each_holds_and_a_removed_symbol_stops_at_once(database: Database[Any]) -> None:
    instruments = Instruments(SYMBOLS)
    a, b = worker(database, "a", instruments), worker(database, "b", instruments)
    mine_a, mine_b = settle(a, b)
    assert set(mine_a).isdisjoint(mine_b)
    assert set(mine_a) | set(mine_b) == set(SYMBOLS)
    assert (len(mine_a), len(mine_b)) == (5, 5)
    assert set(mine_a) == a.book.held
    assert set(mine_b) == b.book.held
    gone = mine_a[0]
    instruments.symbols = tuple(s for s in SYMBOLS if s != gone)
    assert gone not in a.round()[0]  # unsubscribed at its next round, the lease given back
    assert gone not in a.book.held
    mine_a, mine_b = settle(a, b)
    assert sorted(mine_a + mine_b) == sorted(instruments.symbols)


def test_a_failed_round_keeps_what_is_held_and_a_clean_stop_hands_over(database: Database[Any]) -> None:
    instruments = Instruments(SYMBOLS)
    a, b = worker(database, "a", instruments), worker(database, "b", instruments)
    mine_a, _ = settle(a, b)
    instruments.fail = True
    with pytest.raises(ConnectionError):
        a.round()  # the follower logs it and keeps streaming what it streams
    assert a.book.held == set(mine_a)
    instruments.fail = False
    assert a.release() == set(mine_a)
    assert a.round() == ((), "")  # released: it takes nothing again
    assert set(b.round()[0]) == set(SYMBOLS)  # the other's next round takes them all


def test_the_traded_symbols_go_with_the_trading_lease_whose_fence_gates_the_trader(database: Database[Any]) -> None:
    """Traded BTC-like SYM00 is streamed by the trading lease's holder only, besides its share of the other nine;
    its gate is open while its fence is valid, and shut once the fence's local deadline passed; when it stops,
    the other takes the lease and the traded symbol."""
    instruments = Instruments(SYMBOLS)
    traded = {SYMBOLS[0]}
    clock = Clock()
    a = worker(database, "a", instruments, pinned=lambda s: frozenset(traded) & set(s), clock=clock)
    b = worker(database, "b", instruments, pinned=lambda s: frozenset(traded) & set(s))
    mine_a, mine_b = settle(a, b)
    assert a.trading()
    assert not b.trading()
    assert SYMBOLS[0] in mine_a
    assert SYMBOLS[0] not in mine_b
    assert SYMBOLS[0] not in a.book.held | b.book.held  # not in the shared group
    assert sorted(mine_a + mine_b) == sorted(SYMBOLS)
    assert (len(a.book.held), len(b.book.held)) in {(4, 5), (5, 4)}
    fence = a.fence
    assert fence is not None
    assert fence.name == trading_lease("binance")
    clock.now += LEASE  # no round for longer than it trusts the lease: the gate shuts by itself, no I/O
    assert not a.trading()
    a.release()
    mine_b = b.round()[0]
    assert b.trading()
    assert SYMBOLS[0] in mine_b
    assert b.fence is not None
    assert b.fence.token == fence.token + 1


def test_the_rounds_run_on_their_own_thread_and_the_stream_reads_their_last_answer(database: Database[Any]) -> None:
    """The first ask starts the rounds and waits for the first; later asks read the last answer (no I/O); a failing
    round's error is raised until one succeeds; a release stops the rounds."""
    instruments = Instruments(SYMBOLS)
    a = worker(database, "a", instruments)
    assert set(a()[0]) == set(SYMBOLS)
    instruments.symbols = SYMBOLS[:3]
    deadline = time.monotonic() + 5
    while set(a()[0]) != set(SYMBOLS[:3]):
        assert time.monotonic() < deadline, a()
        time.sleep(0.05)
    instruments.fail = True
    deadline = time.monotonic() + 5
    while a._error is None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    with pytest.raises(ConnectionError):
        a()
    instruments.fail = False
    assert a.release() == set(SYMBOLS[:3])
    assert a._thread is not None
    assert not a._thread.is_alive()

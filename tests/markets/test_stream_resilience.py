"""The stream when its own database fails, and two writers opening the same gap at once.

The stream runs in-process against the simulator; its writes to MongoDB are made to fail for a while by a
wrapper around the real write (mongod itself is shared by the whole test session, so it cannot be stopped
here). Nothing may be lost: every failed batch is written later, and the candles still equal the truth.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo.errors import AutoReconnect

from exchangesim.server import Simulator
from markets.exchanges.base import CandleBar, TradeTick
from markets.exchanges.binance import BinanceRest
from markets.exchanges.binance.stream import BinanceStream
from markets.models import Candle, Gap, Tick
from markets.services import gap_open, ticks_ingest
from markets.stream import ListenerThread, StreamConfig, StreamListener, TradeStream, storage
from tests.e2e.test_stream_recovery import SYMBOL, assert_candles_equal_truth, assert_equal_to_truth, stored

pytestmark = pytest.mark.django_db(transaction=True)


def failing(real: Callable[..., Any], times: int, error: Exception) -> tuple[Callable[..., Any], list[int]]:
    """``real`` that raises ``error`` on its first ``times`` calls; the list counts the calls."""
    calls: list[int] = []

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) <= times:
            raise error
        return real(*args, **kwargs)

    return wrapper, calls


class Told(StreamListener):
    """Notes the trade ids of the batches it is told were stored, and the feed states, on its own thread."""

    name = "told"
    thread = ListenerThread.OWN

    def __init__(self) -> None:
        self.ids: list[int] = []
        self.states: list[str] = []

    def ticks_stored(self, batch: Sequence[TradeTick], now: datetime) -> None:
        self.ids += [t.trade_id for t in batch]

    def feed_changed(self, state: str, reason: str, now: datetime) -> None:
        self.states.append(state)


class Failing(StreamListener):
    """Fails on every candle pass, on the database thread."""

    name = "failing"
    thread = ListenerThread.DATABASE

    def candles_written(self, written: Mapping[str, Sequence[CandleBar]], now: datetime) -> None:
        raise RuntimeError("a broken listener (injected)")


def test_a_failing_database_loses_nothing(
    sim_thread: Simulator, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The first 4 tick writes fail, then two candle counts fail: afterwards the stored ticks and 1m candles equal
    the simulator's truth, with every id once. A listener is told of each stored trade once (a batch whose ticks
    were not written is told when they are), and one failing on every candle pass stops nothing."""
    ingest, ingest_calls = failing(storage.ticks_ingest, 4, AutoReconnect("connection refused (injected)"))
    real_accumulate, count_failures = storage.accumulate, []

    def accumulate(batch: list[Any]) -> Any:  # fails twice once the writes work again: stored, not counted
        if len(ingest_calls) > 4 and len(count_failures) < 2:
            count_failures.append(1)
            raise AutoReconnect("connection reset (injected)")
        return real_accumulate(batch)

    monkeypatch.setattr(storage, "ticks_ingest", ingest)
    monkeypatch.setattr(storage, "accumulate", accumulate)
    config = StreamConfig(exchange="binance", symbols=(SYMBOL,), stall_seconds=5)
    told = Told()
    stream = TradeStream(
        config, BinanceStream(sim_thread.ws_url, (SYMBOL,)), lambda: BinanceRest(sim_thread.url), [Failing(), told]
    )

    async def main() -> None:
        task = asyncio.create_task(stream.run())
        await asyncio.sleep(12)  # 6 failed passes back off 0.25 + 0.5 + 1 + 2 + 4 + 5 s at most
        stream.stop()
        await asyncio.wait_for(task, 60)

    asyncio.run(main())
    assert len(ingest_calls) > 6, "the stream stopped writing after the failures"
    assert len(count_failures) == 2
    docs = stored()
    print(
        f"\n{len(ingest_calls)} writes, the first 4 failed; {len(docs)} ticks stored, ids "
        f"{docs[0]['trade_id']}..{docs[-1]['trade_id']}"
    )
    assert len(docs) > 50
    assert_equal_to_truth(sim_thread, docs)
    assert assert_candles_equal_truth(sim_thread, docs) >= 1
    assert "kept for a retry" in caplog.text
    assert not Gap.objects.exists()  # the socket never missed a trade: nothing was a gap
    assert told.ids == [d["trade_id"] for d in docs]
    assert told.states[0] == "connected"
    assert told.states[-1] == "down"
    assert "binance: the failing listener failed on candles_written" in caplog.text


def test_two_writers_opening_the_same_gap_at_once_get_one_record() -> None:
    """The stream and the Celery scan may both open a gap at the same moment: neither fails, one record
    (Django's update_or_create retries its read when the insert loses the race on the unique index)."""
    errors: list[BaseException] = []
    for start in range(1000, 1200, 10):
        barrier = threading.Barrier(2)

        def open_it(start: int = start, barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            try:
                gap_open(exchange="binance", symbol=SYMBOL, first_id=start, last_id=start + 9)
            except BaseException as exc:  # collected and asserted below
                errors.append(exc)

        threads = [threading.Thread(target=open_it) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []
    assert Gap.objects.filter(symbol=SYMBOL).count() == 20
    assert not Tick.objects.exists()


def test_a_restart_builds_the_candles_a_crash_left_unwritten(sim_thread: Simulator) -> None:
    """Ticks of several minutes stored with no candle (a stream killed before its candle pass wrote them): the
    next stream rebuilds every one of those minutes on start, not only the last one, and the 1m candles of the
    whole record equal the truth."""
    rest = BinanceRest(sim_thread.url)
    now = datetime.now(UTC)
    first = rest.trades_by_time(SYMBOL, now - timedelta(minutes=4), now - timedelta(minutes=3), limit=1)[0]
    until = now - timedelta(seconds=30)
    ticks, page = [], [first]
    while page[-1].ts < until:
        page = rest.trades_from_id(SYMBOL, page[-1].trade_id + (1 if ticks else 0), limit=1000)
        ticks += [t for t in page if t.ts < until]
    ticks_ingest(ticks=ticks)
    assert len({t.ts.replace(second=0, microsecond=0) for t in ticks}) >= 4
    assert not Candle.objects.filter(symbol=SYMBOL).exists()
    config = StreamConfig(exchange="binance", symbols=(SYMBOL,), stall_seconds=5)
    stream = TradeStream(config, BinanceStream(sim_thread.ws_url, (SYMBOL,)), lambda: BinanceRest(sim_thread.url))

    async def main() -> None:
        task = asyncio.create_task(stream.run())
        async with asyncio.timeout(60):
            while not await asyncio.to_thread(Gap.objects.filter(symbol=SYMBOL, state="filled").exists):  # noqa: ASYNC110
                await asyncio.sleep(0.2)  # the condition lives in MongoDB: no event to wait on
        stream.stop()
        await asyncio.wait_for(task, 60)

    asyncio.run(main())
    docs = stored()
    assert_equal_to_truth(sim_thread, docs)
    assert assert_candles_equal_truth(sim_thread, docs) >= 5

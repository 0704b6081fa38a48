"""The stream through a database outage, in-process against the simulator: the database is made to fail (or hang)
by a switch around the real writes, since the session's mongod is shared (tests/e2e/test_outage_mongodb.py stops a
mongod of its own). Whatever fails, the stream goes on, loses nothing, and stops cleanly.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from pymongo.errors import ServerSelectionTimeoutError

from exchangesim.server import Simulator, running_in_thread
from markets.exchanges.binance import BinanceRest
from markets.exchanges.binance.stream import BinanceStream
from markets.models import Gap
from markets.stream import StreamConfig, TradeStream, storage
from tests.conftest import sim_config
from tests.e2e.test_stream_recovery import SYMBOL, assert_candles_equal_truth, assert_equal_to_truth, stored

pytestmark = pytest.mark.django_db(transaction=True)
DOWN = ServerSelectionTimeoutError("127.0.0.1:27017: [Errno 111] Connection refused (injected)")


class Switch:
    """Wraps a database call: raises ``DOWN`` while ``down`` is set, blocks while ``hung`` is set; counts calls."""

    def __init__(self) -> None:
        self.down = threading.Event()
        self.hung = threading.Event()
        self.released = threading.Event()
        self.calls = 0
        self.refused = 0

    def wrap(self, real: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            if self.hung.is_set():
                self.released.wait(60)
            if self.down.is_set():
                self.refused += 1
                raise DOWN
            return real(*args, **kwargs)

        return call


@pytest.fixture
def sim() -> Iterator[Simulator]:
    """A simulator with 50 trades/s per symbol."""
    with running_in_thread(sim_config(rate=50.0)) as s:
        yield s


def make(sim: Simulator, **config: Any) -> TradeStream:
    return TradeStream(
        StreamConfig(exchange="binance", symbols=(SYMBOL,), stall_seconds=5, **config),
        BinanceStream(sim.ws_url, (SYMBOL,)),
        lambda: BinanceRest(sim.url),
    )


async def eventually(condition: Callable[[], object], seconds: float) -> None:
    """Poll ``condition`` (in a thread: it may read the database) until it holds, for at most ``seconds``."""
    async with asyncio.timeout(seconds):
        while not await asyncio.to_thread(condition):  # noqa: ASYNC110 - the state lives in MongoDB or the simulator
            await asyncio.sleep(0.05)


def gap_filled() -> bool:
    return Gap.objects.filter(symbol=SYMBOL, state="filled").exists()


def test_candle_and_feed_writes_failing_lose_nothing(
    sim: Simulator, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Candles and feed records refused for 8 s: the candle writer and the feed writer go on (each failure logged
    once), the candles of those seconds are written when the database answers, and the stream stops cleanly."""
    switch = Switch()
    monkeypatch.setattr(storage, "candles_upsert", switch.wrap(storage.candles_upsert))
    monkeypatch.setattr(storage.Storage, "feeds_write", switch.wrap(storage.Storage.feeds_write))
    stream = make(sim)

    async def main() -> None:
        task = asyncio.create_task(stream.run())
        await eventually(lambda: stream.written > 100, 30)
        switch.down.set()
        await asyncio.sleep(8)
        switch.down.clear()
        await eventually(lambda: stream.health.up, 15)
        await asyncio.sleep(2)
        stream.stop()
        await asyncio.wait_for(task, 60)

    asyncio.run(main())
    assert switch.refused > 2
    assert caplog.text.count("the database failed writing the 1m candles") == 1
    assert caplog.text.count("the database failed writing the feed records") == 1
    assert "the database answers again" in caplog.text
    assert "Traceback" not in caplog.text
    docs = stored()
    assert_equal_to_truth(sim, docs)
    assert assert_candles_equal_truth(sim, docs) >= 1


def test_a_hung_database_never_holds_the_socket(sim: Simulator, monkeypatch: pytest.MonkeyPatch) -> None:
    """With every database job hanging, a dropped socket is back within seconds (its feed state is kept, not
    awaited); the trades received meanwhile stay buffered, and once the database answers the hole is filled and
    every trade is stored once."""
    switch = Switch()
    monkeypatch.setattr(storage, "ticks_ingest", switch.wrap(storage.ticks_ingest))
    monkeypatch.setattr(storage.Storage, "feeds_write", switch.wrap(storage.Storage.feeds_write))
    stream = make(sim)
    status = f"{sim.url}/_sim/status"

    def sockets() -> int:
        return int(requests.get(status, timeout=5).json()["venues"]["binance"]["open_sockets"])

    async def main() -> float:
        task = asyncio.create_task(stream.run())
        await eventually(lambda: stream.written > 100, 30)
        switch.hung.set()
        await asyncio.sleep(1)
        stream.drop(1.0)
        dropped = time.monotonic()
        await eventually(lambda: stream.reconnects == 1 and stream.sockets.sockets[0].connected and sockets() == 1, 10)
        back = time.monotonic() - dropped
        assert not switch.released.is_set()
        await asyncio.sleep(2)
        switch.hung.clear()
        switch.released.set()
        await eventually(gap_filled, 60)
        stream.stop()
        await asyncio.wait_for(task, 60)
        return back

    back = asyncio.run(main())
    print(f"\nthe socket was back {back:.2f} s after a 1 s drop, with the database hung")
    assert back < 5
    docs = stored()
    assert_equal_to_truth(sim, docs)
    assert_candles_equal_truth(sim, docs)


def test_past_the_buffer_ceiling_the_hole_is_recovered_by_id(
    sim: Simulator, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The database down until 300 trades are buffered (the ceiling) and 3 s more: the stream takes no more
    trades, then, once half of them are written, takes them again and fills the hole by id; every trade is
    stored once and the candles equal the truth."""
    switch = Switch()
    monkeypatch.setattr(storage, "ticks_ingest", switch.wrap(storage.ticks_ingest))
    stream = make(sim, buffer_max_ticks=300, flush_size=50, catch_up_batch=100)

    async def main() -> None:
        task = asyncio.create_task(stream.run())
        await eventually(lambda: stream.written > 100, 30)
        switch.down.set()
        await eventually(lambda: stream._shedding, 30)
        await asyncio.sleep(3)
        switch.down.clear()
        await eventually(lambda: not stream._shedding, 15)
        await eventually(gap_filled, 60)
        stream.stop()
        await asyncio.wait_for(task, 60)

    asyncio.run(main())
    assert "STREAM_BUFFER_MAX_TICKS" in caplog.text
    assert "taking trades again" in caplog.text
    gap = Gap.objects.get(symbol=SYMBOL, kind="trades")
    assert gap.recovered == gap.end - gap.start + 1 == gap.missing  # the trades not taken, every one
    docs = stored()
    assert_equal_to_truth(sim, docs)
    assert_candles_equal_truth(sim, docs)


def test_stopping_with_the_database_down_says_what_was_not_written(
    sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stopped while the database is down, the stream gives up writing after ``stop_flush_seconds`` and says how
    many trades it could not write; the next start resumes from the last stored trade and recovers them by id."""
    switch = Switch()
    monkeypatch.setattr(storage, "ticks_ingest", switch.wrap(storage.ticks_ingest))
    stream = make(sim, stop_flush_seconds=1.0)

    async def first() -> None:
        task = asyncio.create_task(stream.run())
        await eventually(lambda: stream.written > 100, 30)
        switch.down.set()
        await asyncio.sleep(2)
        stream.stop()
        await asyncio.wait_for(task, 30)

    asyncio.run(first())
    assert stream.unwritten > 0
    assert stream.written == len(stored())
    switch.down.clear()
    again = make(sim)

    async def second() -> None:
        task = asyncio.create_task(again.run())
        await eventually(gap_filled, 60)
        again.stop()
        await asyncio.wait_for(task, 60)

    asyncio.run(second())
    docs = stored()
    assert_equal_to_truth(sim, docs)
    assert_candles_equal_truth(sim, docs)

"""A running stream follows a changing set of symbols, in-process against the simulator and the session's mongod: a
symbol added starts at its first live trade (nothing before it is "recovered"), one removed stops, one added again
resumes by id as on a restart; with one symbol a socket, a socket that drops is recovered for its own symbol only.
And the source ``manage.py stream`` follows: the stored instruments."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from exchangesim.server import Simulator, running_in_thread
from markets.exchanges.binance import BinanceRest
from markets.exchanges.binance.stream import BinanceStream
from markets.models import Feed, Gap, Instrument, Tick
from markets.stream import StreamConfig, TradeStream
from markets.stream.following import CATCH_UP_GRACE, follow_source, instruments_source
from tests.conftest import sim_config
from tests.e2e.test_multivenue_recovery import stored, truth
from tests.markets.stream.test_connection import opened
from tests.markets.stream.test_outage import eventually

SYMBOLS = ("BTCUSDT", "ETHUSDT")


@pytest.fixture
def sim() -> Iterator[Simulator]:
    """BTCUSDT and ETHUSDT at 50 trades a second each."""
    with running_in_thread(sim_config(rate=50.0, symbols=SYMBOLS)) as s:
        yield s


def count(symbol: str) -> int:
    return Tick.objects.filter(exchange="binance", symbol=symbol).count()


def exchange_last_id(sim: Simulator, symbol: str) -> int:
    resp = requests.get(f"{sim.url}/api/v3/aggTrades", params={"symbol": symbol, "limit": 1}, timeout=5)
    resp.raise_for_status()
    return int(resp.json()[-1]["a"])


def stream_of(sim: Simulator, symbols: tuple[str, ...], **config: Any) -> TradeStream:
    return TradeStream(
        StreamConfig("binance", symbols, stall_seconds=5, **config),
        BinanceStream(sim.ws_url, symbols),
        lambda: BinanceRest(sim.url),
    )


def assert_equal_to_truth(sim: Simulator, symbol: str) -> list[int]:
    """The stored trades of ``symbol``: contiguous ids (0 missing, 0 doubled), each equal to the simulator's."""
    rows = stored("binance", symbol)
    ids = [r[0] for r in rows]
    assert ids == list(range(ids[0], ids[-1] + 1)), f"{symbol}: a missing or doubled trade id"
    assert rows == truth(sim, "binance", symbol, ids[0], ids[-1]), f"{symbol} differs from the truth"
    return ids


@pytest.mark.django_db(transaction=True)
def test_a_symbol_added_starts_live_and_one_added_again_resumes_by_id(sim: Simulator) -> None:
    """ETH added to a running BTC stream: stored from its first live trade on, with no gap opened for what came
    before. Removed: its trades stop and its feed record goes, BTC goes on. Added again 50 trades later: the hole
    is a gap from its last stored id, filled by id; in the end ETH's stored trades equal the truth, once each."""
    stream = stream_of(sim, ("BTCUSDT",))

    async def main() -> tuple[datetime, int]:
        task = asyncio.create_task(stream.run())
        await eventually(lambda: count("BTCUSDT") > 50, 30)
        added_at = datetime.now(UTC)
        assert await stream.follow(SYMBOLS) == (["ETHUSDT"], [])
        await eventually(lambda: count("ETHUSDT") > 50, 15)
        assert await stream.follow(["BTCUSDT"]) == ([], ["ETHUSDT"])
        await eventually(lambda: not any(t.symbol == "ETHUSDT" for t in stream._buffer), 5)
        await eventually(lambda: not Feed.objects.filter(symbol="ETHUSDT").exists(), 10)
        eth, btc = await asyncio.to_thread(count, "ETHUSDT"), await asyncio.to_thread(count, "BTCUSDT")
        last = await asyncio.to_thread(lambda: stored("binance", "ETHUSDT")[-1][0])
        await eventually(lambda: exchange_last_id(sim, "ETHUSDT") > last + 50 and count("BTCUSDT") > btc + 50, 15)
        assert await asyncio.to_thread(count, "ETHUSDT") == eth, "a removed symbol's trades were still stored"
        assert await stream.follow(SYMBOLS) == (["ETHUSDT"], [])
        await eventually(lambda: Gap.objects.filter(symbol="ETHUSDT", state="filled").exists(), 30)
        await eventually(lambda: count("ETHUSDT") > eth + 100, 15)
        stream.stop()
        await asyncio.wait_for(task, 60)
        return added_at, last

    added_at, last = asyncio.run(main())
    ids = assert_equal_to_truth(sim, "ETHUSDT")
    first = Tick.objects.get(exchange="binance", symbol="ETHUSDT", trade_id=ids[0])
    assert first.ts >= added_at - timedelta(seconds=1), "trades from before ETH was added were stored"
    gap = Gap.objects.get(symbol="ETHUSDT", kind="trades")
    assert (gap.start, gap.state, gap.recovered) == (last + 1, "filled", gap.end - gap.start + 1)
    print(
        f"\nETH re-added: gap {gap.start}..{gap.end} filled ({gap.recovered} trades); {len(ids)} stored, as the truth"
    )
    assert_equal_to_truth(sim, "BTCUSDT")
    assert not Gap.objects.filter(symbol="BTCUSDT").exists()


@pytest.mark.django_db(transaction=True)
def test_a_socket_that_drops_is_recovered_for_its_own_symbols_only(sim: Simulator) -> None:
    """One symbol a socket: BTC's socket dropped for 3 s is reconnected and its hole filled by id; ETH's socket
    never went down and has no gap. Both equal the truth."""
    stream = stream_of(sim, SYMBOLS, streams_per_socket=1)
    before = opened(sim, "binance")

    async def main() -> None:
        task = asyncio.create_task(stream.run())
        await eventually(lambda: count("BTCUSDT") > 50 and count("ETHUSDT") > 50, 30)
        btc = stream.sockets.socket_of("BTCUSDT")
        assert btc is not None
        btc.drop(3.0)
        await eventually(lambda: Gap.objects.filter(symbol="BTCUSDT", state="filled").exists(), 30)
        eth = await asyncio.to_thread(count, "ETHUSDT")
        await eventually(lambda: count("ETHUSDT") > eth + 50, 15)
        stream.stop()
        await asyncio.wait_for(task, 60)

    asyncio.run(main())
    assert len(stream.sockets.sockets) == 2
    eth_socket = stream.sockets.socket_of("ETHUSDT")
    assert eth_socket is not None
    assert (stream.sockets.socket_of("BTCUSDT").reconnects, eth_socket.reconnects) == (1, 0)  # type: ignore[union-attr]
    assert opened(sim, "binance") - before == 3, "two sockets, and BTC's again"
    assert not Gap.objects.filter(symbol="ETHUSDT").exists()
    assert_equal_to_truth(sim, "BTCUSDT")
    assert_equal_to_truth(sim, "ETHUSDT")


def pause(sim: Simulator, paused: bool) -> None:
    requests.post(f"{sim.url}/_sim/market", json={"paused": paused}, timeout=5).raise_for_status()


@pytest.mark.django_db(transaction=True)
def test_a_symbol_a_worker_takes_with_nothing_stored_and_hears_nothing_of_gets_the_exchanges_latest_trade_stored(
    sim: Simulator,
) -> None:
    """A leased worker's source knows the exchange's latest trades (``following.catch_up``). ETH, never stored, is
    added while the market is paused: its socket says nothing, so after the grace the exchange's latest is stored,
    before any live trade of it, a resume point for whoever takes ETH over should this worker die before writing
    its first live trades. Once the market goes on, ETH is stored from there, contiguous and equal to the truth."""
    stream = stream_of(sim, ("BTCUSDT",))
    rest = BinanceRest(sim.url)

    class Source:
        """Both symbols, and the exchange's latest trade of those asked for."""

        def __call__(self) -> tuple[tuple[str, ...], str]:
            return SYMBOLS, ""

        def latest(self, symbols: list[str]) -> dict[str, Any]:
            return {s: rest.latest_trades(s, 1)[-1] for s in symbols}

    async def main() -> int:
        task = asyncio.create_task(stream.run())
        await eventually(lambda: count("BTCUSDT") > 20, 30)
        await asyncio.to_thread(pause, sim, True)
        latest = await asyncio.to_thread(exchange_last_id, sim, "ETHUSDT")
        stopping = asyncio.Event()
        follower = asyncio.create_task(follow_source(stream, Source(), 0.1, stopping, name="test", grace=1.0))
        try:
            await eventually(lambda: count("ETHUSDT") == 1, 10)
            assert await asyncio.to_thread(lambda: [r[0] for r in stored("binance", "ETHUSDT")]) == [latest]
            await asyncio.to_thread(pause, sim, False)
            await eventually(lambda: count("ETHUSDT") > 30, 15)
        finally:
            stopping.set()
            await follower
            stream.stop()
            await asyncio.wait_for(task, 60)
        return latest

    latest = asyncio.run(main())
    rest.close()
    ids = assert_equal_to_truth(sim, "ETHUSDT")
    assert ids[0] == latest
    print(f"\nETH taken with nothing stored: {latest} (the exchange's latest) stored first, then {len(ids) - 1} more")


@pytest.mark.django_db(transaction=True)
def test_a_symbol_its_socket_delivers_within_the_grace_costs_no_rest_request_and_opens_no_gap(sim: Simulator) -> None:
    """ETH, never stored, is added to a worker's running BTC stream while the market trades. Its socket delivers
    within the grace, so the exchange is not asked for its latest trade: asked at once, REST was ahead of a socket
    still subscribing or delivering, and its latest trade, taken first, opened a gap of the trades the socket was
    about to deliver (seen once in CI: 3 ids of BNBUSDT at a worker's start, filled by REST for nothing)."""
    grace = CATCH_UP_GRACE
    stream = stream_of(sim, ("BTCUSDT",))
    asked: list[list[str]] = []

    class Source:
        def __call__(self) -> tuple[tuple[str, ...], str]:
            return SYMBOLS, ""

        def latest(self, symbols: list[str]) -> dict[str, Any]:
            asked.append(symbols)
            return {}

    async def main() -> None:
        task = asyncio.create_task(stream.run())
        await eventually(lambda: count("BTCUSDT") > 20, 30)
        stopping = asyncio.Event()
        follower = asyncio.create_task(follow_source(stream, Source(), 0.1, stopping, name="test", grace=grace))
        added = time.monotonic()
        try:
            await eventually(lambda: count("ETHUSDT") > 30, 15)
            await asyncio.sleep(max(0.0, added + grace + 1 - time.monotonic()))  # the catch-up is over
        finally:
            stopping.set()
            await follower
            stream.stop()
            await asyncio.wait_for(task, 60)

    asyncio.run(main())
    assert asked == [], "a symbol heard on its socket within the grace was asked of the exchange"
    assert not Gap.objects.exists(), [(g.symbol, g.start, g.end) for g in Gap.objects.all()]
    ids = assert_equal_to_truth(sim, "ETHUSDT")
    print(f"\nETH heard within {grace:g} s: 0 REST requests, 0 gaps, {len(ids)} trades stored as the truth")


@pytest.mark.django_db
def test_the_stored_instruments_are_what_the_stream_follows(settings: Any, sim_thread: Simulator) -> None:
    """Nothing stored: the default instruments are stored (as the exchange lists them) and streamed, said so; a
    symbol learned later by a history request (stored, not streamed) changes nothing. Stored: those streamed. All
    removed: none, said so."""
    settings.BINANCE_REST_URL = sim_thread.url
    read = instruments_source("binance")
    symbols, note = read()
    assert symbols == ("BTCUSDT", "ETHUSDT")  # the simulator lists two of the four
    assert "stored its default instruments as the exchange lists them (BTCUSDT, ETHUSDT)" in note
    assert "BNBUSDT, SOLUSDT are not listed on binance" in note
    assert Instrument.objects.get(exchange="binance", symbol="BTCUSDT").tick_size is not None, "the exchange's data"
    for symbol, streamed in (("XRPUSDT", True), ("ADAUSDT", True), ("DOGEUSDT", False)):
        Instrument.objects.create(
            exchange="binance",
            symbol=symbol,
            canonical=f"{symbol[:-4]}-USDT",
            base=symbol[:-4],
            quote="USDT",
            streamed=streamed,
        )
    assert read() == (("ADAUSDT", "BTCUSDT", "ETHUSDT", "XRPUSDT"), "")
    Instrument.objects.filter(exchange="binance").update(streamed=False)
    symbols, note = read()
    assert symbols == ()
    assert "every stored one was removed" in note


@pytest.mark.django_db
def test_with_the_exchange_unreachable_the_defaults_are_streamed_unstored(settings: Any) -> None:
    settings.BINANCE_REST_URL = "http://127.0.0.1:9"  # nothing listens there
    symbols, note = instruments_source("binance")()
    assert symbols == ("BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT")
    assert "could not be" in note
    assert "trying again" in note
    assert not Instrument.objects.exists()


async def test_a_follower_takes_each_change_and_outlives_a_failing_source() -> None:
    """The source is asked every period; its symbols are handed on; a read that fails changes nothing."""
    answers: list[Any] = [(("A",), ""), RuntimeError("the database is down"), (("A", "B"), ""), ((), "none")]
    followed: list[tuple[str, ...]] = []
    stopping = asyncio.Event()

    def source() -> tuple[tuple[str, ...], str]:
        answer = answers.pop(0)
        if not answers:
            stopping.set()
        if isinstance(answer, Exception):
            raise answer
        return answer  # type: ignore[no-any-return]

    class Follower:
        async def follow(self, symbols: Any) -> tuple[list[str], list[str]]:
            followed.append(tuple(symbols))
            return [], []

    await asyncio.wait_for(follow_source(Follower(), source, 0.01, stopping, name="test"), 5)
    assert followed == [("A",), ("A", "B"), ()]

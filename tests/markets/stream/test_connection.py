"""The stream's socket judges the connection, not the trades. Against the simulator with its market paused (nothing
trades), a socket that is alive is never reconnected: Binance sends nothing at all but answers our pings, Coinbase
and Kraken send heartbeats. A socket that goes silent and answers nothing (the simulator's stall) is replaced within
about ``stall_seconds``, and so is one the stream was asked to stop hearing (a requested stall), pongs and all.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator

import pytest
import requests

from exchangesim.server import Simulator, running_in_thread
from markets.exchanges.base import StreamAdapter
from markets.exchanges.registry import venue
from markets.stream import StreamConfig
from markets.stream.connection import Connection
from tests.conftest import sim_config

STALL = 1.0  # the watchdog's limit in these tests: silent this long is dead
VENUES = ("binance", "coinbase", "kraken")
SYMBOLS = {"binance": "BTCUSDT", "coinbase": "BTC-USD", "kraken": "XBTUSD"}


@pytest.fixture(scope="module")
def quiet_sim() -> Iterator[Simulator]:
    """A simulator whose market is paused: every socket stays open, and no venue prints a trade."""
    with running_in_thread(sim_config(rate=20.0)) as sim:
        requests.post(f"{sim.url}/_sim/market", json={"paused": True}, timeout=5).raise_for_status()
        yield sim


def feed_of(sim: Simulator, name: str) -> StreamAdapter:
    """The live-feed adapter of exchange ``name`` for its symbol, on the simulator's socket of that venue."""
    urls = {
        "binance": sim.ws_url,
        "coinbase": sim.venue_url("coinbase", ws=True) + "/ws",
        "kraken": sim.venue_url("kraken", ws=True) + "/v2",
    }
    return venue(name).stream(urls[name], (SYMBOLS[name],), "aggTrade")


def opened(sim: Simulator, venue: str) -> int:
    """How many stream connections the simulator's ``venue`` has accepted so far."""
    status = requests.get(f"{sim.url}/_sim/status", timeout=5).json()
    return int(status["venues"][venue]["connections_opened"])


def stall(sim: Simulator, venue: str, seconds: float) -> None:
    """The simulator's ``venue`` stalls its sockets for ``seconds``: open, silent, answering nothing."""
    body = {"venue": venue, "mode": "stall", "seconds": seconds}
    requests.post(f"{sim.url}/_sim/ws/drop", json=body, timeout=5).raise_for_status()


class Socket:
    """A ``Connection`` of ``venue`` running in the background, with the frames and feed states it reported."""

    def __init__(self, sim: Simulator, venue: str) -> None:
        self.frames: list[str | bytes] = []
        self.states: list[tuple[str, str]] = []
        self.stopping = asyncio.Event()
        config = StreamConfig(exchange=venue, symbols=(SYMBOLS[venue],), stall_seconds=STALL)
        self.connection = Connection(config, feed_of(sim, venue), self.frames.append, self._state, self.stopping)
        self.task = asyncio.create_task(self.connection.run())

    async def _state(self, state: str, reason: str) -> None:
        self.states.append((state, reason))

    async def until(self, what: str, cond: Callable[[], bool], within: float) -> None:
        """Wait until ``cond()`` holds; fail naming ``what`` after ``within`` seconds."""
        deadline = time.monotonic() + within
        while not cond():
            assert time.monotonic() < deadline, f"{what}: not within {within:g} s (states {self.states})"
            assert not self.task.done(), f"the connection ended: {self.task}"
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        self.stopping.set()
        self.connection.close()
        await asyncio.wait_for(self.task, 10)


@pytest.mark.parametrize("venue", VENUES)
async def test_a_quiet_socket_that_is_alive_is_never_reconnected(quiet_sim: Simulator, venue: str) -> None:
    """Six stall limits of a market without trades: the socket stays, connected once, and the simulator counted
    exactly one connection."""
    before = await asyncio.to_thread(opened, quiet_sim, venue)
    socket = Socket(quiet_sim, venue)
    try:
        await socket.until("connected", lambda: bool(socket.states), 10)
        await asyncio.sleep(6 * STALL)  # the behaviour under test is that nothing happens for this long
    finally:
        await socket.stop()
    print(f"\n{venue}: {len(socket.frames)} frames in {6 * STALL:g} s, {socket.connection.reconnects} reconnects")
    assert socket.states == [("connected", "")]
    assert socket.connection.reconnects == 0
    assert await asyncio.to_thread(opened, quiet_sim, venue) - before == 1
    if venue == "binance":
        assert socket.frames == [], "Binance sends nothing in a quiet market: only pongs kept the socket"


@pytest.mark.parametrize("venue", VENUES)
async def test_a_stalled_socket_is_replaced_within_the_stall_limit(
    quiet_sim: Simulator, venue: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The simulator's stall (nothing sent, no ping answered) is a dead socket: it is given up about ``STALL``
    seconds after the last thing heard, and once the stall is over the stream is connected again."""
    caplog.set_level(logging.WARNING, logger="markets.stream.connection")
    socket = Socket(quiet_sim, venue)
    try:
        await socket.until("connected", lambda: bool(socket.states), 10)
        await asyncio.to_thread(stall, quiet_sim, venue, 4 * STALL)
        stalled_at = time.monotonic()
        await socket.until("the stalled socket given up", lambda: socket.connection.reconnects > 0, 4 * STALL)
        detected = time.monotonic() - stalled_at
        await socket.until(
            "connected after the stall",
            lambda: time.monotonic() > stalled_at + 4 * STALL and socket.states[-1][0] == "connected",
            10,
        )
    finally:
        await socket.stop()
    print(f"\n{venue}: the stall was detected after {detected:.2f} s")
    assert detected < STALL + 0.75, "given up within the stall limit of the last thing heard (and one watchdog step)"
    assert socket.states[1] == ("reconnecting", f"nothing heard for {STALL:g} s: no frame, heartbeat or pong (stalled)")


async def test_a_requested_stall_is_not_kept_alive_by_pongs(quiet_sim: Simulator) -> None:
    """``drop(mode="stall")`` makes the stream deaf to its socket: the pongs still coming back do not count, so the
    watchdog gives the socket up as it would a silent one, and reconnects once the drop is over."""
    socket = Socket(quiet_sim, "binance")
    try:
        await socket.until("connected", lambda: bool(socket.states), 10)
        socket.connection.drop(3 * STALL, "stall")
        await socket.until("the deaf socket given up", lambda: socket.connection.reconnects > 0, 3 * STALL)
        await socket.until("connected again", lambda: socket.states[-1][0] == "connected", 10)
    finally:
        await socket.stop()
    assert socket.connection.reconnects == 1
    assert socket.states[1][1].startswith("dropped on request (nothing heard")

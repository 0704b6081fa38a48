"""The Kraken WebSocket v2 at /kraken/v2: status on connect, ping/pong, per-symbol acknowledgements, the trade
snapshot and updates, heartbeats, refusals, unsubscribe, the ohlc channel, the socket faults (close, reset,
stall, refuse, corrupt), and truth equal to what the socket and REST served."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import aiohttp
import pytest

from exchangesim.kraken.wire import iso
from exchangesim.server import Simulator
from tests.conftest import sim_config
from tests.exchangesim.kraken_client import kr_get, post
from tests.exchangesim.socket_client import SocketClient, connected
from tests.exchangesim.test_coinbase import truth

RFC_US = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")
RFC_NS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z")
TRADE_KEYS = ["symbol", "side", "price", "qty", "ord_type", "trade_id", "timestamp"]


def sub(channel: str = "trade", symbols: tuple[str, ...] = ("BTC/USD",), req_id: int = 1, **params: Any) -> str:
    return json.dumps(
        {"method": "subscribe", "params": {"channel": channel, "symbol": list(symbols), **params}, "req_id": req_id}
    )


class Client(SocketClient):
    """A v2 client collecting every message (parsed with Decimal numbers) and how the socket ended."""

    msgs: list[dict[str, Any]]

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.times: list[float] = []
        self.ended = False
        super().__init__(ws)

    async def _run(self) -> None:
        with contextlib.suppress(Exception):
            async for msg in self.ws:
                if msg.type == aiohttp.WSMsgType.TEXT:
                    self.raw.append(msg.data)
                    self.times.append(time.monotonic())
                    with contextlib.suppress(ValueError):
                        self.msgs.append(json.loads(msg.data, parse_float=Decimal))
        self.ended = True

    def channel(self, name: str, kind: str | None = None) -> list[dict[str, Any]]:
        return [m for m in self.msgs if m.get("channel") == name and (kind is None or m.get("type") == kind)]

    def answers(self, method: str) -> list[dict[str, Any]]:
        return [m for m in self.msgs if m.get("method") == method]

    def trades(self) -> list[dict[str, Any]]:
        return [d for m in self.channel("trade") for d in m["data"]]


def client(sim: Simulator, *first: str) -> contextlib.AbstractAsyncContextManager[Client]:
    return connected(Client, f"{sim.venue_url('kraken', ws=True)}/v2", *first)


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(sim_config()) as s:
        yield s


async def test_status_ping_subscribe_snapshot_updates(sim: Simulator) -> None:
    """Status first; ping -> pong with req_id and RFC 3339 times; one ack; the 50-trade snapshot, then updates
    continuing its ids without gap, in Kraken's fields with exact decimal numbers and the taker side."""
    async with client(sim, json.dumps({"method": "ping", "req_id": 101}), sub(snapshot=True)) as c:
        await c.wait(lambda: len(c.trades()) >= 80, within=8)
    status = c.msgs[0]
    assert (status["channel"], status["type"]) == ("status", "update")
    assert list(status["data"][0]) == ["api_version", "connection_id", "system", "version"]
    assert status["data"][0]["api_version"] == "v2"
    assert status["data"][0]["system"] == "online"
    pong = c.msgs[1]
    assert list(pong) == ["method", "req_id", "time_in", "time_out"]
    assert pong["req_id"] == 101
    assert RFC_US.fullmatch(pong["time_in"])
    assert RFC_US.fullmatch(pong["time_out"])
    ack = c.msgs[2]
    assert list(ack) == ["method", "result", "success", "time_in", "time_out", "req_id"]
    assert (ack["method"], ack["result"], ack["success"], ack["req_id"]) == (
        "subscribe",
        {"channel": "trade", "snapshot": True, "symbol": "BTC/USD"},
        True,
        1,
    )
    snapshot = c.msgs[3]
    assert (snapshot["channel"], snapshot["type"], len(snapshot["data"])) == ("trade", "snapshot", 50)
    assert all(m["type"] == "update" for m in c.channel("trade")[1:])
    trades = c.trades()
    ids = [t["trade_id"] for t in trades]
    assert ids == list(range(ids[0], ids[0] + len(ids)))
    assert all(list(t) == TRADE_KEYS and t["symbol"] == "BTC/USD" for t in trades)
    assert all(RFC_US.fullmatch(t["timestamp"]) for t in trades)
    assert {t["side"] for t in trades} == {"buy", "sell"}
    assert {t["ord_type"] for t in trades} == {"market", "limit"}
    frames = "".join(c.raw[3:])
    assert not re.search(r'"price":\d+\.\d{2}', frames), "XBT/USD prices have one decimal"
    assert not re.search(r'"(price|qty)":[\d.]*e', frames, re.I)
    assert "0000000001" not in frames
    async with aiohttp.ClientSession() as http:
        want = await truth(http, sim, venue="kraken", symbol="XBT/USD", from_id=ids[0], to_id=ids[-1])
    for t, w in zip(trades, want, strict=True):
        assert (t["price"], t["qty"]) == (Decimal(w["price"]), Decimal(w["qty"]))
        assert t["side"] == w["taker_side"]
        assert t["ord_type"] == {"m": "market", "l": "limit"}[w["ord_type"]]
        assert t["timestamp"][:-1] == _iso_us(int(w["time_ns"]))


def _iso_us(t_ns: int) -> str:
    return iso(t_ns, 6)[:-1]


async def test_heartbeats_once_a_second_while_idle(sim: Simulator) -> None:
    """A subscribed socket in a paused market gets {"channel":"heartbeat"} about once a second; an
    unsubscribed one gets none; with the default snapshot false there is no snapshot."""
    async with aiohttp.ClientSession() as http:
        await post(http, sim, "/_sim/market", {"paused": True})
    async with client(sim) as idle, client(sim, sub()) as c:
        await c.wait(lambda: len(c.channel("heartbeat")) >= 3, within=5)
    beats = [t for t, m in zip(c.times, c.msgs, strict=True) if m.get("channel") == "heartbeat"]
    assert all(0.8 < b - a < 1.3 for a, b in itertools.pairwise(beats)), beats
    assert c.raw[c.msgs.index(c.channel("heartbeat")[0])] == '{"channel":"heartbeat"}'
    assert c.channel("trade") == []
    assert idle.channel("heartbeat") == []


async def test_refusals_and_unsubscribe(sim: Simulator) -> None:
    """An unlisted pair is refused per symbol (success false, "Currency pair not supported", the symbol) next
    to the accepted one; a repeat is "Already subscribed"; an unknown channel, a bad interval, a missing
    symbol list and malformed JSON are refused; unsubscribe stops the trades; a second one is not found."""
    async with client(sim, sub(symbols=("BTC/USD", "XBT/USD", "FOO/BAR"), req_id=3)) as c:
        await c.wait(lambda: len(c.answers("subscribe")) == 3)
        ok, bad1, bad2 = c.answers("subscribe")
        assert ok["success"] is True
        for bad, symbol in ((bad1, "XBT/USD"), (bad2, "FOO/BAR")):
            assert bad["success"] is False
            assert bad["symbol"] == symbol
            assert bad["req_id"] == 3
            assert bad["error"].startswith("Currency pair not supported")
        for text in (
            sub(req_id=4),
            sub("book", req_id=5),
            sub("ohlc", interval=2, req_id=6),
            json.dumps({"method": "subscribe", "params": {"channel": "trade"}, "req_id": 7}),
            json.dumps({"method": "dance", "req_id": 8}),
            "{nope",
        ):
            await c.ws.send_str(text)
        await c.wait(lambda: len([m for m in c.msgs if m.get("success") is False]) == 8)
        refusals = [m for m in c.msgs if m.get("success") is False][2:]
        assert refusals[0]["error"] == "Already subscribed"
        assert refusals[0]["req_id"] == 4
        assert [m.get("req_id") for m in refusals[1:]] == [5, 6, 7, 8, None]
        await c.wait(lambda: len(c.trades()) > 5)
        await c.ws.send_str(
            json.dumps({"method": "unsubscribe", "params": {"channel": "trade", "symbol": ["BTC/USD"]}, "req_id": 9})
        )
        await c.wait(lambda: len(c.answers("unsubscribe")) == 1)
        unsub = c.answers("unsubscribe")[0]
        assert (unsub["success"], unsub["result"], unsub["req_id"]) == (
            True,
            {"channel": "trade", "symbol": "BTC/USD"},
            9,
        )
        await asyncio.sleep(0.1)
        seen = len(c.trades())
        await asyncio.sleep(0.6)
        assert len(c.trades()) == seen
        await c.ws.send_str(
            json.dumps({"method": "unsubscribe", "params": {"channel": "trade", "symbol": ["BTC/USD"]}})
        )
        await c.wait(lambda: len(c.answers("unsubscribe")) == 2)
        assert c.answers("unsubscribe")[1]["error"] == "Subscription Not Found"


async def test_ohlc_channel(sim: Simulator) -> None:
    """ohlc: ack with the interval; a snapshot of the bars REST serves (the open one last); updates of the
    current bar as trades come, with 9-digit interval_begin and the bar's end as timestamp, equal to REST's
    bar, for 1- and 60-minute bars alike."""
    async with client(
        sim, sub("ohlc", ("ETH/USD",), interval=1), sub("ohlc", ("ETH/USD",), interval=60, snapshot=False)
    ) as c:
        await c.wait(lambda: len({m["data"][-1]["interval"] for m in c.channel("ohlc", "update")}) == 2)
        async with aiohttp.ClientSession() as http:
            await post(http, sim, "/_sim/market", {"paused": True})
            await asyncio.sleep(0.2)
            rest = {m: (await kr_get(http, sim, "OHLC", pair="ETHUSD", interval=m))[1] for m in (1, 60)}
        await asyncio.sleep(0.1)
    acks = [a["result"] for a in c.answers("subscribe")]
    assert acks == [
        {"channel": "ohlc", "interval": 1, "snapshot": True, "symbol": "ETH/USD"},
        {"channel": "ohlc", "interval": 60, "snapshot": False, "symbol": "ETH/USD"},
    ]
    (snap,) = c.channel("ohlc", "snapshot")
    assert RFC_NS.fullmatch(snap["timestamp"])
    assert len(snap["data"]) == 721
    assert {d["interval"] for d in snap["data"]} == {1}
    for minutes in (1, 60):
        bar = [d for m in c.channel("ohlc", "update") for d in m["data"] if d["interval"] == minutes][-1]
        assert list(bar) == [
            "symbol",
            "open",
            "high",
            "low",
            "close",
            "trades",
            "volume",
            "vwap",
            "interval_begin",
            "interval",
            "timestamp",
        ]
        assert RFC_NS.fullmatch(bar["interval_begin"])
        assert RFC_US.fullmatch(bar["timestamp"])
        assert bar["interval_begin"].endswith(":00.000000000Z")
        assert bar["timestamp"].endswith(":00.000000Z")
        rows = rest[minutes]["result"]["XETHZUSD"]
        row = next(r for r in rows[-2:] if _iso_us(r[0] * 10**9) + "000Z" == bar["interval_begin"])
        assert [bar[k] for k in ("open", "high", "low", "close", "vwap", "volume")] == [Decimal(v) for v in row[1:7]]
        assert bar["trades"] == row[7]


@pytest.mark.parametrize("mode", ["close", "reset"])
async def test_drop_close_and_reset(sim: Simulator, mode: str) -> None:
    """/_sim/ws/drop with venue kraken ends every Kraken socket (a clean close or a TCP reset) and counts them;
    with reject_seconds new sockets are refused until then."""
    async with client(sim, sub()) as c, aiohttp.ClientSession() as http:
        await c.wait(lambda: len(c.trades()) > 3)
        reply = await post(http, sim, "/_sim/ws/drop", {"venue": "kraken", "mode": mode, "reject_seconds": 1})
        assert reply["sockets"] == 1
        await c.wait(lambda: c.ended, within=3)
        with pytest.raises(aiohttp.WSServerHandshakeError) as err:
            await http.ws_connect(f"{sim.venue_url('kraken', ws=True)}/v2")
        assert err.value.status == 503
        await asyncio.sleep(1.1)
        async with client(sim, sub()) as again:
            await again.wait(lambda: len(again.trades()) > 0)


async def test_stall_and_corrupt(sim: Simulator) -> None:
    """A stall sends nothing for its seconds and then the stream goes on (what fell in the stall is lost);
    corrupt duplicate sends a frame twice and malformed half a frame."""
    async with client(sim, sub()) as c, aiohttp.ClientSession() as http:
        await c.wait(lambda: len(c.trades()) > 3)
        await post(http, sim, "/_sim/ws/drop", {"venue": "kraken", "mode": "stall", "seconds": 1})
        stalled_at = time.monotonic()
        before = len(c.raw)
        await c.wait(lambda: len(c.raw) > before, within=4)
        assert c.times[before] - stalled_at > 0.8
        await post(http, sim, "/_sim/ws/corrupt", {"venue": "kraken", "kind": "duplicate"})
        await post(http, sim, "/_sim/ws/corrupt", {"venue": "kraken", "kind": "malformed"})
        count = len(c.raw)
        await c.wait(lambda: len(c.raw) > count + 5)
    after = c.raw[count:]
    assert any(a == b for a, b in itertools.pairwise(after))
    assert any(not _is_json(f) for f in after)


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True

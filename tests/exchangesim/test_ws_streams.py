"""Binance market streams over real sockets: payload shapes, control messages, keep-alive and limits."""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import time
from decimal import Decimal
from typing import Any

import aiohttp
import pytest
import websockets
from websockets.exceptions import ConnectionClosed, ConnectionClosedError

from exchangesim.server import Simulator
from tests.conftest import sim_config

AGG_KEYS = ["e", "E", "s", "a", "p", "q", "f", "l", "T", "m", "M"]
TRADE_KEYS = ["e", "E", "s", "t", "p", "q", "T", "m", "M"]
KLINE_KEYS = ["t", "T", "s", "i", "f", "L", "o", "c", "h", "l", "v", "n", "x", "q", "V", "Q", "B"]
DEC8 = re.compile(r"^\d+\.\d{8}$")


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_reply(msg: object) -> bool:
    """A reply to a control message (as opposed to a market data frame)."""
    return isinstance(msg, dict) and ("result" in msg or "code" in msg)


async def _recv(ws: websockets.ClientConnection, within: float = 3.0) -> Any:
    return json.loads(await asyncio.wait_for(ws.recv(), within))


async def _reply(ws: websockets.ClientConnection, frames: list[Any] | None = None, within: float = 3.0) -> Any:
    """The next control reply; data frames met on the way are appended to ``frames``."""
    deadline = time.monotonic() + within
    while True:
        msg = await _recv(ws, max(0.01, deadline - time.monotonic()))
        if _is_reply(msg):
            return msg
        if frames is not None:
            frames.append(msg)


async def _request(ws: websockets.ClientConnection, req: dict[str, Any], frames: list[Any] | None = None) -> Any:
    await ws.send(json.dumps(req))
    return await _reply(ws, frames)


async def _collect(ws: websockets.ClientConnection, done: Any, within: float = 4.0) -> list[Any]:
    """Frames until ``done(frames)`` is true; fails when the deadline passes first."""
    frames: list[Any] = []
    deadline = time.monotonic() + within
    while not done(frames):
        left = deadline - time.monotonic()
        assert left > 0, f"condition not met within {within}s; got {len(frames)} frames"
        frames.append(await _recv(ws, left))
    return frames


async def _until_closed(ws: websockets.ClientConnection) -> tuple[list[Any], ConnectionClosed]:
    """Every message until the connection closes, and how it closed (fails if it stays silent 3 s)."""
    got: list[Any] = []
    try:
        while True:
            got.append(await _recv(ws))
    except ConnectionClosed as exc:
        return got, exc


def _check_agg(d: dict[str, Any], symbol: str) -> None:
    assert list(d) == AGG_KEYS
    assert d["e"] == "aggTrade"
    assert d["s"] == symbol
    for k in ("E", "a", "f", "l", "T"):
        assert _is_int(d[k]), (k, d[k])
    for k in ("p", "q"):
        assert DEC8.match(d[k]), (k, d[k])
        assert Decimal(d[k]) > 0, (k, d[k])
    assert d["f"] <= d["l"]
    assert d["T"] <= d["E"]
    assert isinstance(d["m"], bool)
    assert d["M"] is True


def _check_trade(d: dict[str, Any], symbol: str) -> None:
    assert list(d) == TRADE_KEYS
    assert d["e"] == "trade"
    assert d["s"] == symbol
    for k in ("E", "t", "T"):
        assert _is_int(d[k]), (k, d[k])
    for k in ("p", "q"):
        assert DEC8.match(d[k]), (k, d[k])
        assert Decimal(d[k]) > 0, (k, d[k])
    assert d["T"] <= d["E"]
    assert isinstance(d["m"], bool)
    assert d["M"] is True


async def test_combined_agg_trade_frames() -> None:
    """/stream?streams=a/b wraps each aggTrade as {"stream","data"}; data has exactly Binance's keys in
    order (e,E,s,a,p,q,f,l,T,m,M) and types; aggregate ids and the trade ids they cover are contiguous."""
    async with (
        Simulator(sim_config()) as sim,
        websockets.connect(f"{sim.ws_url}/stream?streams=btcusdt@aggTrade/ethusdt@aggTrade") as ws,
    ):
        frames = await _collect(
            ws,
            lambda fs: min(sum(f["stream"] == s for f in fs) for s in ("btcusdt@aggTrade", "ethusdt@aggTrade")) >= 20,
        )
    last: dict[str, dict[str, Any]] = {}
    for f in frames:
        assert list(f) == ["stream", "data"]
        assert f["stream"] in ("btcusdt@aggTrade", "ethusdt@aggTrade")
        d = f["data"]
        _check_agg(d, f["stream"].split("@")[0].upper())
        prev = last.get(f["stream"])
        if prev is not None:
            assert d["a"] == prev["a"] + 1, "aggregate ids must be contiguous"
            assert d["f"] == prev["l"] + 1, "aggregates must cover contiguous trade ids"
            assert d["T"] >= prev["T"]
        last[f["stream"]] = d


async def test_raw_trade_frames() -> None:
    """/ws/btcusdt@trade sends unwrapped trade payloads with keys e,E,s,t,p,q,T,m,M and contiguous ids."""
    async with Simulator(sim_config()) as sim, websockets.connect(f"{sim.ws_url}/ws/btcusdt@trade") as ws:
        frames = await _collect(ws, lambda fs: len(fs) >= 30)
    for prev, d in itertools.pairwise(frames):
        assert d["t"] == prev["t"] + 1
    for d in frames:
        _check_trade(d, "BTCUSDT")


async def test_subscribe_list_unsubscribe() -> None:
    """/ws/0 + SUBSCRIBE answers {"result":null,"id":1} then data flows; LIST_SUBSCRIPTIONS lists in
    subscription order; UNSUBSCRIBE stops that stream while the others go on."""
    async with Simulator(sim_config(ws_max_incoming_per_s=100)) as sim, websockets.connect(f"{sim.ws_url}/ws/0") as ws:
        await ws.send(json.dumps({"method": "SUBSCRIBE", "params": ["btcusdt@aggTrade"], "id": 1}))
        first = await asyncio.wait_for(ws.recv(), 3)
        assert first == '{"result":null,"id":1}'  # the exact bytes Binance sends
        data = await _recv(ws)
        _check_agg(data, "BTCUSDT")

        assert await _request(ws, {"method": "SUBSCRIBE", "params": ["ETHUSDT@trade"], "id": "abc1"}) == {
            "result": None,
            "id": "abc1",
        }
        assert await _request(ws, {"method": "LIST_SUBSCRIPTIONS", "id": 3}) == {
            "result": ["btcusdt@aggTrade", "ethusdt@trade"],
            "id": 3,
        }

        assert await _request(ws, {"method": "UNSUBSCRIBE", "params": ["btcusdt@aggTrade"], "id": 312}) == {
            "result": None,
            "id": 312,
        }
        unsubscribed_ms = time.time_ns() // 1_000_000
        assert await _request(ws, {"method": "LIST_SUBSCRIPTIONS", "id": None}) == {
            "result": ["ethusdt@trade"],
            "id": None,
        }
        after = await _collect(
            ws, lambda fs: sum(f.get("e") == "trade" and f["E"] > unsubscribed_ms + 200 for f in fs) >= 5
        )
    late_aggs = [f for f in after if f.get("e") == "aggTrade" and f["E"] > unsubscribed_ms]
    assert late_aggs == [], "no aggTrade made after the UNSUBSCRIBE may be sent"
    for f in after:
        if f.get("e") == "trade":
            _check_trade(f, "ETHUSDT")


async def test_set_and_get_property_combined() -> None:
    """GET_PROPERTY combined is false on /ws and true on /stream; SET_PROPERTY combined true wraps the
    following frames as {"stream","data"}, and false unwraps them again."""
    async with Simulator(sim_config(ws_max_incoming_per_s=100)) as sim:
        async with websockets.connect(f"{sim.ws_url}/stream?streams=btcusdt@trade") as ws:
            assert await _request(ws, {"method": "GET_PROPERTY", "params": ["combined"], "id": 2}) == {
                "result": True,
                "id": 2,
            }
        async with websockets.connect(f"{sim.ws_url}/ws/btcusdt@trade") as ws:
            assert await _request(ws, {"method": "GET_PROPERTY", "params": ["combined"], "id": 2}) == {
                "result": False,
                "id": 2,
            }
            assert await _request(ws, {"method": "SET_PROPERTY", "params": ["combined", True], "id": 5}) == {
                "result": None,
                "id": 5,
            }
            switched_ms = time.time_ns() // 1_000_000
            assert await _request(ws, {"method": "GET_PROPERTY", "params": ["combined"], "id": 6}) == {
                "result": True,
                "id": 6,
            }
            wrapped = await _collect(
                ws, lambda fs: sum("stream" in f and f["data"]["E"] > switched_ms for f in fs) >= 5
            )
            late = [f for f in wrapped if "stream" in f and f["data"]["E"] > switched_ms]
            for f in late:
                assert list(f) == ["stream", "data"]
                assert f["stream"] == "btcusdt@trade"
                _check_trade(f["data"], "BTCUSDT")
            assert not [f for f in wrapped if "stream" not in f and f["E"] > switched_ms]

            assert await _request(ws, {"method": "SET_PROPERTY", "params": ["combined", False], "id": 7}) == {
                "result": None,
                "id": 7,
            }
            switched_ms = time.time_ns() // 1_000_000
            raw = await _collect(ws, lambda fs: sum("stream" not in f and f["E"] > switched_ms for f in fs) >= 5)
            assert not [f for f in raw if "stream" in f and f["data"]["E"] > switched_ms]
            for f in raw:
                if "stream" not in f:
                    _check_trade(f, "BTCUSDT")


async def test_control_message_errors() -> None:
    """Error replies as the reference gives them: invalid JSON is code 3 (no id), an unknown method
    code 2, an unknown property code 0, a non-boolean value code 1; the connection stays usable."""
    async with Simulator(sim_config(ws_max_incoming_per_s=100)) as sim, websockets.connect(f"{sim.ws_url}/ws/0") as ws:
        await ws.send("not json")
        assert await _reply(ws) == {"code": 3, "msg": "Invalid JSON: expected value at line 1 column 1"}
        await ws.send("{\n  ")
        bad = await _reply(ws)
        assert bad["code"] == 3
        assert "id" not in bad
        assert re.fullmatch(r"Invalid JSON: .+ at line 2 column \d+", bad["msg"]), bad

        unknown = await _request(ws, {"method": "PING", "id": 7})
        assert unknown["code"] == 2
        assert unknown["id"] == 7
        assert unknown["msg"].startswith("Invalid request: "), unknown
        assert "PING" in unknown["msg"]

        bad_stream = await _request(ws, {"method": "SUBSCRIBE", "params": ["btcusdt@nonsense"], "id": 8})
        assert bad_stream["code"] == 2
        assert bad_stream["msg"].startswith("Invalid request: ")

        assert await _request(ws, {"method": "GET_PROPERTY", "params": ["compressed"], "id": 9}) == {
            "code": 0,
            "msg": "Unknown property",
            "id": 9,
        }
        assert await _request(ws, {"method": "SET_PROPERTY", "params": ["nope", True], "id": 10}) == {
            "code": 0,
            "msg": "Unknown property",
            "id": 10,
        }
        assert await _request(ws, {"method": "SET_PROPERTY", "params": ["combined", "true"], "id": 11}) == {
            "code": 1,
            "msg": "Invalid value type: expected Boolean",
            "id": 11,
        }
        assert await _request(ws, {"method": "SET_PROPERTY", "params": ["combined", 1], "id": 12}) == {
            "code": 1,
            "msg": "Invalid value type: expected Boolean",
            "id": 12,
        }
        # none of the errors changed anything
        assert await _request(ws, {"method": "GET_PROPERTY", "params": ["combined"], "id": 13}) == {
            "result": False,
            "id": 13,
        }
        assert await _request(ws, {"method": "LIST_SUBSCRIPTIONS", "id": 14}) == {"result": [], "id": 14}


async def test_kline_1s_open_and_closed() -> None:
    """btcusdt@kline_1s sends open (x false) and closed (x true) klines with Binance's fields; a closed
    kline's OHLCV, trade count and first/last ids match the trades of its second."""
    async with (
        Simulator(sim_config()) as sim,
        websockets.connect(f"{sim.ws_url}/stream?streams=btcusdt@kline_1s/btcusdt@trade") as ws,
    ):

        def enough(fs: list[Any]) -> bool:
            # an open kline, and a closed one whose trades were all received: it opened after the first
            # trade tick, and a trade of a later tick came (its own tick's trades follow it)
            ks = [f["data"] for f in fs if f["stream"] == "btcusdt@kline_1s"]
            ts = [f["data"] for f in fs if f["stream"] == "btcusdt@trade"]
            return (
                any(not k["k"]["x"] for k in ks)
                and bool(ts)
                and any(k["k"]["x"] and k["k"]["t"] > ts[0]["E"] and ts[-1]["E"] > k["E"] for k in ks)
            )

        frames = await _collect(ws, enough, within=5)
    trades = [f["data"] for f in frames if f["stream"] == "btcusdt@trade"]
    klines = [f["data"] for f in frames if f["stream"] == "btcusdt@kline_1s"]
    for d in klines:
        assert list(d) == ["e", "E", "s", "k"]
        assert d["e"] == "kline"
        assert d["s"] == "BTCUSDT"
        assert _is_int(d["E"])
        k = d["k"]
        assert list(k) == KLINE_KEYS
        assert k["i"] == "1s"
        assert k["s"] == "BTCUSDT"
        assert k["t"] % 1000 == 0
        assert k["T"] == k["t"] + 999
        assert isinstance(k["x"], bool)
        for key in ("o", "c", "h", "l", "v", "q", "V", "Q"):
            assert DEC8.match(k[key]), (key, k[key])
        assert Decimal(k["l"]) <= min(Decimal(k["o"]), Decimal(k["c"]))
        assert Decimal(k["h"]) >= max(Decimal(k["o"]), Decimal(k["c"]))
        if k["x"]:
            assert d["E"] > k["T"], "a kline is closed only after its close time"
    closed = next(d["k"] for d in klines if d["k"]["x"] and d["k"]["t"] > trades[0]["E"])
    mine = [t for t in trades if closed["t"] <= t["T"] <= closed["T"]]
    assert closed["n"] == len(mine)
    if mine:
        assert (closed["f"], closed["L"]) == (mine[0]["t"], mine[-1]["t"])
        prices = [Decimal(t["p"]) for t in mine]
        assert Decimal(closed["o"]) == prices[0]
        assert Decimal(closed["c"]) == prices[-1]
        assert (Decimal(closed["h"]), Decimal(closed["l"])) == (max(prices), min(prices))
        assert Decimal(closed["v"]) == sum(Decimal(t["q"]) for t in mine)
        assert Decimal(closed["V"]) == sum(Decimal(t["q"]) for t in mine if not t["m"])
    else:
        assert (closed["f"], closed["L"], closed["v"]) == (-1, -1, "0.00000000")


async def test_book_ticker_has_no_event_fields() -> None:
    """btcusdt@bookTicker frames carry exactly u,s,b,B,a,A (no e/E), with u rising and bid below ask."""
    async with Simulator(sim_config()) as sim, websockets.connect(f"{sim.ws_url}/ws/btcusdt@bookTicker") as ws:
        frames = await _collect(ws, lambda fs: len(fs) >= 5)
    for prev, d in itertools.pairwise(frames):
        assert d["u"] > prev["u"]
    for d in frames:
        assert list(d) == ["u", "s", "b", "B", "a", "A"]
        assert _is_int(d["u"])
        assert d["s"] == "BTCUSDT"
        for key in ("b", "B", "a", "A"):
            assert DEC8.match(d[key]), (key, d[key])
        assert Decimal(d["b"]) < Decimal(d["a"])


async def test_mini_ticker() -> None:
    """btcusdt@miniTicker frames carry exactly e,E,s,c,o,h,l,v,q, about once a second, with l <= c <= h."""
    async with Simulator(sim_config()) as sim, websockets.connect(f"{sim.ws_url}/ws/btcusdt@miniTicker") as ws:
        frames = await _collect(ws, lambda fs: len(fs) >= 2, within=4)
    assert frames[1]["E"] - frames[0]["E"] >= 1000
    for d in frames:
        assert list(d) == ["e", "E", "s", "c", "o", "h", "l", "v", "q"]
        assert d["e"] == "24hrMiniTicker"
        assert d["s"] == "BTCUSDT"
        assert _is_int(d["E"])
        for key in ("c", "o", "h", "l", "v", "q"):
            assert DEC8.match(d[key]), (key, d[key])
        assert Decimal(d["l"]) <= Decimal(d["c"]) <= Decimal(d["h"])
        assert Decimal(d["v"]) > 0


async def test_server_pings_and_answered_pongs_keep_the_socket() -> None:
    """The server pings every ping_interval; a client echoing each ping's payload stays connected well past
    pong_timeout."""
    async with (
        Simulator(sim_config(ping_interval=0.3, pong_timeout=0.6)) as sim,
        aiohttp.ClientSession() as http,
        http.ws_connect(f"{sim.ws_url}/ws/btcusdt@aggTrade", autoping=False) as ws,
    ):
        pings: list[float] = []
        opened = time.monotonic()
        while time.monotonic() - opened < 1.6:
            msg = await ws.receive(timeout=1)
            assert msg.type not in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED), msg
            if msg.type == aiohttp.WSMsgType.PING:
                pings.append(time.monotonic())
                assert msg.data, "Binance pings carry a payload"
                await ws.pong(msg.data)
        assert not ws.closed
        status = await (await http.get(f"{sim.url}/_sim/status")).json()
    assert len(pings) >= 4
    gaps = [b - a for a, b in itertools.pairwise(pings)]
    assert all(0.2 <= g <= 0.6 for g in gaps), gaps
    assert status["faults_injected"].get("ws_pong_timeouts", 0) == 0


async def test_client_not_answering_pings_is_disconnected() -> None:
    """A client that never answers pings is closed after pong_timeout, while a websockets client (which
    answers them) stays connected and keeps receiving data."""
    async with (
        Simulator(sim_config(ping_interval=0.2, pong_timeout=0.6)) as sim,
        aiohttp.ClientSession() as http,
        websockets.connect(f"{sim.ws_url}/ws/btcusdt@trade") as good,
    ):
        # the good client must keep reading: websockets stops reading the socket (pongs included) once
        # its queue of unread messages is full, and then it would rightly be timed out too
        good_frames: list[tuple[float, Any]] = []

        async def read_good() -> None:
            async for text in good:
                good_frames.append((time.monotonic(), json.loads(text)))

        reading = asyncio.create_task(read_good())
        async with http.ws_connect(f"{sim.ws_url}/ws/btcusdt@trade", autoping=False) as bad:
            opened = time.monotonic()
            pinged = False
            while True:
                msg = await bad.receive(timeout=3)
                pinged |= msg.type == aiohttp.WSMsgType.PING
                if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
                    break
            closed_at = time.monotonic()
            assert pinged
            assert bad.close_code == 1008
            assert 0.6 <= closed_at - opened < 2.0, closed_at - opened
        # the good client outlives the bad one by a few pong timeouts, receiving all along
        deadline = closed_at + 3
        while not good_frames or good_frames[-1][0] < closed_at + 1.2:
            assert not reading.done(), reading
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        reading.cancel()
        status = await (await http.get(f"{sim.url}/_sim/status")).json()
        assert status["venues"]["binance"]["open_sockets"] == 1
        for _, f in good_frames:
            _check_trade(f, "BTCUSDT")
    assert status["faults_injected"]["ws_pong_timeouts"] == 1


async def test_connection_age_limit_closes_the_socket() -> None:
    """A connection older than max_connection_age is closed by the server (code 1000)."""
    async with (
        Simulator(sim_config(max_connection_age=1.0)) as sim,
        websockets.connect(f"{sim.ws_url}/ws/btcusdt@trade") as ws,
    ):
        opened = time.monotonic()
        frames, _ = await _until_closed(ws)
        age = time.monotonic() - opened
        assert frames
        for f in frames:
            _check_trade(f, "BTCUSDT")
        assert ws.close_code == 1000
        assert 0.9 <= age < 2.5, age


async def test_too_many_incoming_messages_closes_the_socket() -> None:
    """ws_max_incoming_per_s messages within a second are fine; one more closes the connection (1008)."""
    async with Simulator(sim_config(ws_max_incoming_per_s=5)) as sim, websockets.connect(f"{sim.ws_url}/ws/0") as ws:
        for i in range(5):
            await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": i}))
        assert [await _reply(ws) for _ in range(5)] == [{"result": [], "id": i} for i in range(5)]
        await asyncio.sleep(1.05)  # the one-second window must pass; there is no event to wait for
        for i in range(6):
            await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 10 + i}))
        replies, closed = await _until_closed(ws)
        assert isinstance(closed, ConnectionClosedError)
        assert replies == [{"result": [], "id": 10 + i} for i in range(5)]
        assert ws.close_code == 1008


async def test_book_ticker_matches_depth() -> None:
    """bookTicker's u is the id depth reports as lastUpdateId at the same moment, with the same best
    bid and ask, so a client can join the two the way it does on Binance."""
    async with Simulator(sim_config()) as sim, aiohttp.ClientSession() as http:
        sim.market.set_flow(paused=True)  # hold the book still
        async with websockets.connect(f"{sim.ws_url}/ws/btcusdt@bookTicker") as ws:
            sim.market.set_flow(paused=False)
            ticker = await _recv(ws)
            sim.market.set_flow(paused=True)
            while True:  # the last frame before the pause
                try:
                    ticker = json.loads(await asyncio.wait_for(ws.recv(), 0.3))
                except TimeoutError:
                    break
        async with http.get(f"{sim.url}/api/v3/depth", params={"symbol": "BTCUSDT", "limit": "5"}) as r:
            depth = await r.json()
    assert depth["lastUpdateId"] == ticker["u"]
    assert depth["bids"][0][0] == ticker["b"]
    assert depth["asks"][0][0] == ticker["a"]


async def test_kline_stream_starts_fresh_after_idle() -> None:
    """A kline stream subscribed again after every socket closed starts at the current kline, without a
    burst of stale closed klines from the idle time."""
    async with Simulator(sim_config()) as sim:
        async with websockets.connect(f"{sim.ws_url}/ws/btcusdt@kline_1s") as ws:
            await _recv(ws)
        await asyncio.sleep(2.5)  # idle: no socket open for a few 1 s klines
        async with websockets.connect(f"{sim.ws_url}/ws/btcusdt@kline_1s") as ws:
            frames = await _collect(ws, lambda fs: any(f["k"]["x"] for f in fs), within=4)
    closed = [f for f in frames if f["k"]["x"]]
    assert len(closed) == 1
    assert closed[0]["E"] - closed[0]["k"]["T"] < 1000


async def test_ws_path_with_a_bad_stream_name_is_refused() -> None:
    """/ws/<name> with something that looks like a stream but is not one is refused (400, code 2);
    /ws/<anything else> is an empty connection waiting for SUBSCRIBE (ccxt opens /ws/0)."""
    async with Simulator(sim_config()) as sim:
        for bad in ("btcusdt@nonsense", "!miniTicker@arr@1000ms", "btcusdt@kline_7m"):
            with pytest.raises(websockets.InvalidStatus) as info:
                async with websockets.connect(f"{sim.ws_url}/ws/{bad}"):
                    pass
            assert info.value.response.status_code == 400
            assert json.loads(info.value.response.body)["code"] == 2
        async with websockets.connect(f"{sim.ws_url}/ws/0") as ws:
            assert await _request(ws, {"method": "LIST_SUBSCRIPTIONS", "id": 1}) == {"result": [], "id": 1}

"""The control API over real sockets: every fault kind, market steering, status, input errors, truth."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import websockets
from websockets.exceptions import ConnectionClosed, ConnectionClosedError, ConnectionClosedOK, InvalidStatus

from exchangesim.server import Simulator
from tests.conftest import sim_config


async def _post(http: aiohttp.ClientSession, url: str, body: Any) -> tuple[int, Any]:
    data = body if isinstance(body, str) else json.dumps(body)
    async with http.post(url, data=data, headers={"Content-Type": "application/json"}) as r:
        return r.status, await r.json()


async def _status(http: aiohttp.ClientSession, sim: Simulator) -> dict[str, Any]:
    async with http.get(f"{sim.url}/_sim/status") as r:
        assert r.status == 200
        return await r.json()


async def _truth(http: aiohttp.ClientSession, sim: Simulator, **params: object) -> list[dict[str, Any]]:
    async with http.get(f"{sim.url}/_sim/truth", params={k: str(v) for k, v in params.items()}) as r:
        assert r.status == 200, await r.text()
        assert r.headers["Content-Type"].startswith("application/x-ndjson")
        return [json.loads(line) for line in (await r.text()).splitlines() if line]


class Reader:
    """Collects every raw text frame of a websockets client, with arrival times, in the background."""

    def __init__(self, ws: websockets.ClientConnection) -> None:
        self.ws = ws
        self.frames: list[tuple[float, str]] = []
        self.closed: BaseException | None = None
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        try:
            async for text in self.ws:
                self.frames.append((time.monotonic(), str(text)))
        except BaseException as exc:  # the close is what some tests look at
            self.closed = exc
            raise

    async def wait(self, cond: Any, within: float = 4.0) -> None:
        """Until ``cond()`` is true; fails when the deadline passes first."""
        deadline = time.monotonic() + within
        while not cond():
            assert time.monotonic() < deadline, f"condition not met within {within}s ({len(self.frames)} frames)"
            assert not self._task.done() or cond(), f"the socket ended: {self.closed!r}"
            await asyncio.sleep(0.01)

    def data(self) -> list[dict[str, Any]]:
        return [json.loads(t) for _, t in self.frames]

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(BaseException):
            await self._task


@contextlib.asynccontextmanager
async def _streaming(sim: Simulator, path: str) -> AsyncIterator[Reader]:
    async with websockets.connect(f"{sim.ws_url}{path}") as ws:
        reader = Reader(ws)
        try:
            yield reader
        finally:
            await reader.stop()


async def _until_closed(ws: websockets.ClientConnection) -> ConnectionClosed:
    """Read until the connection closes; how it closed (fails if it stays silent 3 s)."""
    try:
        while True:
            await asyncio.wait_for(ws.recv(), 3)
    except ConnectionClosed as exc:
        return exc


async def _try_connect(url: str) -> int | dict[str, Any]:
    """The refusal's HTTP status, or the first frame of an accepted connection."""
    try:
        async with websockets.connect(url) as ws:
            return json.loads(await asyncio.wait_for(ws.recv(), 3))
    except InvalidStatus as exc:
        return exc.response.status_code


def _ids(frames: list[dict[str, Any]]) -> list[int]:
    return [f["t"] if "t" in f else f["a"] for f in frames]


def _contiguous(ids: list[int]) -> bool:
    return all(b == a + 1 for a, b in itertools.pairwise(ids))


# -- socket faults --------------------------------------------------------------------------------------
async def test_ws_drop_close() -> None:
    """POST /_sim/ws/drop mode=close closes every market socket cleanly (close frame 1001)."""
    async with (
        Simulator(sim_config()) as sim,
        aiohttp.ClientSession() as http,
        websockets.connect(f"{sim.ws_url}/ws/btcusdt@trade") as ws,
    ):
        await asyncio.wait_for(ws.recv(), 3)
        status, body = await _post(http, f"{sim.url}/_sim/ws/drop", {"mode": "close"})
        assert status == 200
        assert body == {"ok": True, "mode": "close", "sockets": 1, "seconds": 0, "reject_seconds": 0}
        assert isinstance(await _until_closed(ws), ConnectionClosedOK)
        assert ws.close_code == 1001
        assert (await _status(http, sim))["faults_injected"]["ws_close"] == 1


async def test_ws_drop_reset() -> None:
    """mode=reset aborts the TCP connection: the client gets no close frame (an abnormal close, 1006)."""
    async with (
        Simulator(sim_config()) as sim,
        aiohttp.ClientSession() as http,
        websockets.connect(f"{sim.ws_url}/ws/btcusdt@trade") as ws,
    ):
        await asyncio.wait_for(ws.recv(), 3)
        status, body = await _post(http, f"{sim.url}/_sim/ws/drop", {"mode": "reset"})
        assert (status, body["sockets"]) == (200, 1)
        closed = await _until_closed(ws)
        assert isinstance(closed, ConnectionClosedError)
        assert closed.rcvd is None, "a reset sends no close frame"
        assert ws.close_code == 1006
        # the simulator itself is fine: a new connection streams again
        async with websockets.connect(f"{sim.ws_url}/ws/btcusdt@trade") as again:
            assert json.loads(await asyncio.wait_for(again.recv(), 3))["e"] == "trade"


async def test_ws_drop_stall() -> None:
    """mode=stall with seconds=N: the socket stays open but gets no data and no pings for N seconds, then
    data and pings resume."""
    async with (
        Simulator(sim_config(ping_interval=0.3, pong_timeout=0.6)) as sim,
        aiohttp.ClientSession() as http,
        http.ws_connect(f"{sim.ws_url}/ws/btcusdt@trade", autoping=False) as ws,
    ):
        data: list[float] = []
        pings: list[float] = []
        stall_at = resume_by = 0.0

        async def read(until: float) -> None:
            while time.monotonic() < until:
                try:
                    msg = await ws.receive(timeout=max(0.01, until - time.monotonic()))
                except TimeoutError:
                    return
                assert msg.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.PING), msg
                if msg.type == aiohttp.WSMsgType.PING:
                    pings.append(time.monotonic())
                    await ws.pong(msg.data)
                else:
                    data.append(time.monotonic())

        await read(time.monotonic() + 0.7)
        assert data, "data flows before the stall"
        assert pings, "pings flow before the stall"
        asked = time.monotonic()
        status, body = await _post(http, f"{sim.url}/_sim/ws/drop", {"mode": "stall", "seconds": 1.0})
        stall_at = time.monotonic()
        assert (status, body["mode"], body["sockets"]) == (200, "stall", 1)
        resume_by = asked + 1.0
        await read(resume_by + 0.9)
        quiet = [t for t in data + pings if stall_at + 0.1 < t < resume_by - 0.05]
        assert quiet == [], "nothing may arrive during the stall"
        assert [t for t in data if t >= resume_by - 0.05], "data resumes after the stall"
        assert [t for t in pings if t >= resume_by - 0.05], "pings resume after the stall"
        assert not ws.closed


async def test_ws_reject_seconds() -> None:
    """reject_seconds refuses new connections (HTTP 503) while it lasts and accepts them afterwards."""
    async with Simulator(sim_config()) as sim, aiohttp.ClientSession() as http:
        async with websockets.connect(f"{sim.ws_url}/ws/btcusdt@trade") as ws:
            status, body = await _post(http, f"{sim.url}/_sim/ws/drop", {"mode": "close", "reject_seconds": 1})
            started = time.monotonic()
            assert (status, body["reject_seconds"], body["sockets"]) == (200, 1, 1)
            assert isinstance(await _until_closed(ws), ConnectionClosedOK)
        assert await _try_connect(f"{sim.ws_url}/ws/btcusdt@trade") == 503
        refused = 1
        while True:
            assert time.monotonic() - started < 3, "connections are still refused long after reject_seconds"
            frame = await _try_connect(f"{sim.ws_url}/stream?streams=btcusdt@trade")
            if not isinstance(frame, int):
                break
            assert frame == 503
            refused += 1
            await asyncio.sleep(0.05)
        accepted_after = time.monotonic() - started
        assert frame["stream"] == "btcusdt@trade"
        assert 0.85 <= accepted_after < 2.0, accepted_after
        assert (await _status(http, sim))["faults_injected"]["ws_rejected"] == refused


# -- REST faults ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "code", "msg_start", "retry_after"),
    [
        (429, -1003, "Too much request weight used; current limit is ", 7),
        (429, -1003, "Too much request weight used; current limit is ", None),
        (418, -1003, "Way too much request weight used; IP banned until ", 30),
        (500, -1000, "An unknown error occurred while processing the request.", None),
        (503, -1008, "Server is currently overloaded", None),
    ],
)
async def test_rest_fault_status(status: int, code: int, msg_start: str, retry_after: int | None) -> None:
    """POST /_sim/rest/fault answers the next request under the prefix with the status and Binance's error
    body; 418 and 429 always carry Retry-After (as Binance does); the next request succeeds again."""
    fault: dict[str, Any] = {"status": status, "path_prefix": "/api/v3/time"}
    if retry_after is not None:
        fault["retry_after"] = retry_after
    async with Simulator(sim_config()) as sim, aiohttp.ClientSession() as http:
        st, body = await _post(http, f"{sim.url}/_sim/rest/fault", fault)
        assert st == 200
        assert body["ok"] is True
        assert len(body["pending"]) == 1
        async with http.get(f"{sim.url}/api/v3/ping") as r:  # another path is not affected
            assert (r.status, await r.json()) == (200, {})
        async with http.get(f"{sim.url}/api/v3/time") as r:
            assert r.status == status
            err = await r.json()
            assert list(err) == ["code", "msg"]
            assert err["code"] == code
            assert err["msg"].startswith(msg_start), err
            assert "X-MBX-USED-WEIGHT-1M" in r.headers
            if status in (418, 429):
                assert int(r.headers["Retry-After"]) == (retry_after if retry_after is not None else 1)
            else:
                assert "Retry-After" not in r.headers
        async with http.get(f"{sim.url}/api/v3/time") as r:
            assert r.status == 200
            assert isinstance((await r.json())["serverTime"], int)
        stat = await _status(http, sim)
    assert stat["faults_injected"][f"rest_{status}"] == 1


async def test_rest_fault_count() -> None:
    """count=N fails exactly the next N matching requests; request N+1 succeeds."""
    async with Simulator(sim_config()) as sim, aiohttp.ClientSession() as http:
        st, _ = await _post(http, f"{sim.url}/_sim/rest/fault", {"status": 503, "count": 3})
        assert st == 200
        seen = []
        for _ in range(5):
            async with http.get(f"{sim.url}/api/v3/depth", params={"symbol": "BTCUSDT", "limit": "5"}) as r:
                seen.append(r.status)
                body = await r.json()
        assert seen == [503, 503, 503, 200, 200]
        assert body["bids"]
        assert body["asks"]
        stat = await _status(http, sim)
    assert stat["faults_injected"]["rest_503"] == 3


async def test_rest_fault_of_one_method() -> None:
    """method="POST" fails only POSTs under the prefix: a GET of the same path is served and spends nothing."""
    async with Simulator(sim_config()) as sim, aiohttp.ClientSession() as http:
        fault = {"status": 400, "path_prefix": "/api/v3/ping", "method": "POST"}
        st, body = await _post(http, f"{sim.url}/_sim/rest/fault", fault)
        assert (st, body["pending"][0]["method"]) == (200, "POST")
        async with http.get(f"{sim.url}/api/v3/ping") as r:
            assert r.status == 200
        async with http.post(f"{sim.url}/api/v3/ping") as r:
            assert (r.status, (await r.json())["code"]) == (400, -1000)
        async with http.post(f"{sim.url}/api/v3/ping") as r:
            assert r.status == 405  # the fault is spent: the route itself answers
        assert (await _status(http, sim))["faults_injected"]["rest_400"] == 1


async def test_rest_fault_delay_only() -> None:
    """delay_ms without a status delays the response, which is still the correct one."""
    async with Simulator(sim_config()) as sim, aiohttp.ClientSession() as http:
        st, body = await _post(http, f"{sim.url}/_sim/rest/fault", {"delay_ms": 400, "path_prefix": "/api/v3/time"})
        assert st == 200
        assert body["pending"][0]["status"] is None
        before_ms = time.time_ns() // 1_000_000
        t0 = time.monotonic()
        async with http.get(f"{sim.url}/api/v3/time") as r:
            assert r.status == 200
            server_time = (await r.json())["serverTime"]
        took = time.monotonic() - t0
        assert took >= 0.4, took
        assert before_ms - 5 <= server_time <= time.time_ns() // 1_000_000 + 5
        t0 = time.monotonic()
        async with http.get(f"{sim.url}/api/v3/time") as r:
            assert r.status == 200
        assert time.monotonic() - t0 < 0.3, "only one request is delayed"
        assert (await _status(http, sim))["faults_injected"]["rest_delay"] == 1


# -- corrupted frames -----------------------------------------------------------------------------------
def _anomaly(raw: list[str]) -> int | None:
    """Index of the first frame that is not valid JSON, repeats its predecessor or goes back in ids."""
    prev: int | None = None
    for i, text in enumerate(raw):
        try:
            tid = json.loads(text)["t"]
        except json.JSONDecodeError:
            return i
        if prev is not None and tid <= prev:
            return i
        prev = tid
    return None


async def _corrupted(kind: str) -> tuple[list[str], dict[str, Any]]:
    """Raw @trade frames around one corruption of ``kind`` (20 more after it), and the status afterwards."""
    async with (
        Simulator(sim_config(rate=300)) as sim,
        aiohttp.ClientSession() as http,
        _streaming(sim, "/ws/btcusdt@trade") as reader,
    ):
        await reader.wait(lambda: len(reader.frames) >= 5)
        st, body = await _post(http, f"{sim.url}/_sim/ws/corrupt", {"kind": kind})
        assert (st, body) == (200, {"ok": True, "kind": kind, "count": 1})
        await reader.wait(lambda: _anomaly([t for _, t in reader.frames]) is not None)
        n = len(reader.frames)
        await reader.wait(lambda: len(reader.frames) >= n + 20)
        return [t for _, t in reader.frames], await _status(http, sim)


def _parsed(raw: list[str]) -> list[dict[str, Any] | None]:
    out: list[dict[str, Any] | None] = []
    for t in raw:
        try:
            out.append(json.loads(t))
        except json.JSONDecodeError:
            out.append(None)
    return out


async def test_ws_corrupt_malformed() -> None:
    """kind=malformed sends one frame that is not valid JSON in place of a trade; the rest are intact."""
    raw, stat = await _corrupted("malformed")
    frames = _parsed(raw)
    bad = [i for i, f in enumerate(frames) if f is None]
    assert len(bad) == 1
    i = bad[0]
    assert 0 < i < len(frames) - 1
    before, after = frames[i - 1], frames[i + 1]
    assert before is not None
    assert after is not None
    assert after["t"] == before["t"] + 2, "the malformed frame took the place of one trade"
    assert raw[i].startswith('{"e":"trade"')
    good = [f for f in frames if f is not None]
    assert sum(b["t"] != a["t"] + 1 for a, b in itertools.pairwise(good)) == 1
    assert stat["faults_injected"]["ws_malformed"] == 1


async def test_ws_corrupt_duplicate() -> None:
    """kind=duplicate sends one frame twice in a row."""
    raw, stat = await _corrupted("duplicate")
    dups = [i for i in range(1, len(raw)) if raw[i] == raw[i - 1]]
    assert len(dups) == 1
    ids = _ids([f for f in _parsed(raw) if f is not None])
    assert ids == sorted(ids)
    assert len(ids) == len(set(ids)) + 1
    assert sorted(set(ids)) == list(range(ids[0], ids[-1] + 1))
    assert stat["faults_injected"]["ws_duplicate"] == 1


async def test_ws_corrupt_reorder() -> None:
    """kind=reorder swaps two neighbouring frames; nothing is lost or repeated."""
    raw, stat = await _corrupted("reorder")
    ids = _ids([f for f in _parsed(raw) if f is not None])
    assert len(ids) == len(raw)
    swaps = [i for i in range(1, len(ids)) if ids[i] < ids[i - 1]]
    assert len(swaps) == 1
    i = swaps[0]
    assert ids[i - 1] == ids[i] + 1, "two neighbours swapped"
    assert sorted(ids) == list(range(ids[0] if ids[0] < ids[1] else ids[1], ids[0] + len(ids) - (ids[0] > ids[1])))
    assert stat["faults_injected"]["ws_reorder"] == 1


# -- market steering ------------------------------------------------------------------------------------
async def test_market_rate_change() -> None:
    """POST /_sim/market rate sets the market's trade rate; the stream goes on with ids contiguous across the
    change. (How many trades a second follow is the engine's: test_engine pins it, as a live market measured
    for a second trades with the day's volatility and bursts.)"""
    async with (
        Simulator(sim_config(rate=5)) as sim,
        aiohttp.ClientSession() as http,
        _streaming(sim, "/ws/btcusdt@trade") as reader,
    ):
        st, body = await _post(http, f"{sim.url}/_sim/market", {"rate": 400})
        changed_ms = time.time_ns() // 1_000_000
        assert (st, body) == (200, {"ok": True, "rate": 400.0, "paused": False})
        await reader.wait(lambda: any(f["T"] > changed_ms for f in reader.data()))
        assert _contiguous(_ids(reader.data()))
        assert (await _status(http, sim))["rate"] == 400.0


async def test_market_pause_and_resume() -> None:
    """paused=true stops all trades (stream and status counters still), paused=false brings them back, and
    trade ids stay contiguous across the pause; status reports the last ids exactly."""
    async with (
        Simulator(sim_config(rate=100)) as sim,
        aiohttp.ClientSession() as http,
        _streaming(sim, "/ws/btcusdt@trade") as reader,
    ):
        await reader.wait(lambda: len(reader.frames) >= 3)
        st, body = await _post(http, f"{sim.url}/_sim/market", {"paused": True})
        assert (st, body["paused"]) == (200, True)
        paused_ms = time.time_ns() // 1_000_000
        first = await _status(http, sim)
        assert first["paused"] is True
        last_id = first["symbols"]["BTCUSDT"]["last_trade_id"]
        await reader.wait(lambda: reader.data()[-1]["t"] == last_id)  # everything before the pause arrived
        n = len(reader.frames)
        t0 = time.monotonic()
        while time.monotonic() - t0 < 0.6:  # nothing new while paused, for a while
            await asyncio.sleep(0.05)
            assert len(reader.frames) == n
        again = await _status(http, sim)
        assert again["symbols"]["BTCUSDT"]["trades_emitted"] == first["symbols"]["BTCUSDT"]["trades_emitted"]
        assert again["symbols"]["BTCUSDT"]["last_trade_id"] == last_id
        assert all(f["T"] <= paused_ms for f in reader.data())

        st, body = await _post(http, f"{sim.url}/_sim/market", {"paused": False})
        assert (st, body["paused"]) == (200, False)
        await reader.wait(lambda: len(reader.frames) >= n + 10)
        ids = _ids(reader.data())
        assert _contiguous(ids), "no id is skipped across the pause"
        assert ids[n] == last_id + 1


async def test_status_fields() -> None:
    """GET /_sim/status reports request counts per path, weight used, open sockets and their subscriptions,
    trades emitted and the last trade/aggregate ids (equal to what a client saw once the market is paused)."""
    async with (
        Simulator(sim_config()) as sim,
        aiohttp.ClientSession() as http,
        _streaming(sim, "/stream?streams=btcusdt@trade/btcusdt@aggTrade") as reader,
    ):
        first_ms = time.time_ns() // 1_000_000  # weight counts restart each minute: see the end
        used = []
        for _ in range(3):
            async with http.get(f"{sim.url}/api/v3/time") as r:
                assert r.status == 200
                used.append(int(r.headers["X-MBX-USED-WEIGHT-1M"]))
        async with http.get(f"{sim.url}/api/v3/depth", params={"symbol": "BTCUSDT", "limit": "100"}) as r:
            assert r.status == 200
            used.append(int(r.headers["X-MBX-USED-WEIGHT-1M"]))
        await reader.wait(lambda: len(reader.frames) >= 10)
        await _post(http, f"{sim.url}/_sim/market", {"paused": True})
        stat = await _status(http, sim)
        btc = stat["symbols"]["BTCUSDT"]

        def seen(stream: str, key: str) -> int | None:
            got = [f["data"][key] for f in reader.data() if f["stream"] == stream]
            return got[-1] if got else None

        await reader.wait(
            lambda: (
                (seen("btcusdt@trade", "t"), seen("btcusdt@aggTrade", "a"))
                == (btc["last_trade_id"], btc["last_agg_id"])
            )
        )
    venue = stat["venues"]["binance"]
    assert venue["requests"]["/api/v3/time"] == 3
    assert venue["requests"]["/api/v3/depth"] == 1
    assert venue["requests"]["/stream"] == 1
    if first_ms // 60_000 == stat["server_time"] // 60_000:  # one minute's window from the first request on
        assert used == [1, 2, 3, 3 * 1 + 5]
        assert venue["weight_used"] == {"127.0.0.1": 3 * 1 + 5}
    else:  # a minute began in between: each answer adds its weight to the one before, or starts again from it
        assert all(b in (a + w, w) for a, b, w in zip([0, *used[:-1]], used, [1, 1, 1, 5], strict=True)), used
        assert venue["weight_used"]["127.0.0.1"] in (0, used[-1])
    assert venue["open_sockets"] == 1
    assert venue["subscriptions"] == ["btcusdt@aggTrade", "btcusdt@trade"]
    assert stat["paused"] is True
    assert stat["rate"] == 50.0
    assert set(stat["symbols"]) == {"BTCUSDT", "ETHUSDT"}
    assert btc["kind"] == "synthetic"
    trade_ids = [f["data"]["t"] for f in reader.data() if f["stream"] == "btcusdt@trade"]
    assert btc["trades_emitted"] >= len(trade_ids) > 0
    assert btc["last_trade_id"] == trade_ids[-1]
    assert btc["last_price"] == [f["data"]["p"] for f in reader.data() if f["stream"] == "btcusdt@trade"][-1]
    assert isinstance(stat["server_time"], int)
    assert stat["started_ms"] <= stat["server_time"]


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/_sim/ws/drop", {"mode": "explode"}, "'mode'"),
        ("/_sim/ws/drop", {"mode": "stall", "seconds": -1}, "'seconds'"),
        ("/_sim/ws/drop", {"reject_seconds": "2"}, "'reject_seconds'"),
        ("/_sim/ws/drop", {"mode": "close", "reject_second": 2}, "'reject_second'"),
        ("/_sim/rest/fault", {"status": 200}, "'status'"),
        ("/_sim/rest/fault", {"status": 429, "count": 0}, "'count'"),
        ("/_sim/rest/fault", {"status": 429, "retry_after": True}, "'retry_after'"),
        ("/_sim/rest/fault", {"delay_ms": -5}, "'delay_ms'"),
        ("/_sim/rest/fault", {"path_prefix": "/api/"}, "'status'"),
        ("/_sim/rest/fault", {"status": 429, "path_prefix": "api"}, "'path_prefix'"),
        ("/_sim/rest/fault", {"status": 400, "method": "post"}, "'method'"),
        ("/_sim/ws/corrupt", {}, "'kind'"),
        ("/_sim/ws/corrupt", {"kind": "scramble"}, "'kind'"),
        ("/_sim/ws/corrupt", {"kind": "duplicate", "count": 1.5}, "'count'"),
        ("/_sim/market", {"rate": -1}, "'rate'"),
        ("/_sim/market", {"paused": "yes"}, "'paused'"),
        ("/_sim/market", {"rate": 10, "venue": "bitstamp"}, "venue"),
        ("/_sim/config", {"weight_limit": 0}, "'weight_limit'"),
        ("/_sim/market", "{not json", "JSON"),
        ("/_sim/market", "[1, 2]", "JSON object"),
    ],
)
async def test_bad_control_input(path: str, body: Any, field: str) -> None:
    """Bad control input is answered 400 with a JSON error naming the field, and changes nothing."""
    async with Simulator(sim_config()) as sim, aiohttp.ClientSession() as http:
        st, reply = await _post(http, f"{sim.url}{path}", body)
        assert st == 400
        assert list(reply) == ["error"]
        assert field in reply["error"], reply
        stat = await _status(http, sim)
        assert stat["rate"] == 50.0
        assert stat["paused"] is False
        assert stat["faults_injected"] == {}
        assert sim.faults.rest == []
        assert sim.faults.corrupt == {}
        assert sim.faults.reject_until_ms == {}


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"symbol": "NOPEUSDT"}, "symbol"),
        ({"symbol": "BTCUSDT", "kind": "klines"}, "'kind'"),
        ({"symbol": "BTCUSDT", "from_id": "abc"}, "'from_id'"),
        ({"symbol": "BTCUSDT", "end_ms": "-3"}, "'end_ms'"),
        ({"symbol": "BTCUSDT", "from_id": "1", "start_ms": "1"}, "start_ms"),
        ({"symbol": "BTCUSDT", "venue": "bitstamp"}, "venue"),
        ({"symbol": "BTCUSDT", "fromId": "5"}, "'fromId'"),
    ],
)
async def test_bad_truth_query(query: dict[str, str], field: str) -> None:
    """A bad /_sim/truth query is answered 400 with a JSON error naming the parameter."""
    async with (
        Simulator(sim_config()) as sim,
        aiohttp.ClientSession() as http,
        http.get(f"{sim.url}/_sim/truth", params=query) as r,
    ):
        assert r.status == 400
        reply = await r.json()
        assert field in reply["error"], reply


# -- truth ----------------------------------------------------------------------------------------------
def _complete_ticks(frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The frames without the last tick's, which may have been cut off when the client stopped."""
    last_e = frames[-1]["E"]
    return [f for f in frames if f["E"] != last_e]


async def test_truth_matches_received_agg_trades() -> None:
    """/_sim/truth kind=aggTrades, by ids and by times, equals exactly what a client received over
    @aggTrade for a few seconds (ids, prices, quantities, first/last trade ids, times, sides)."""
    async with (
        Simulator(sim_config()) as sim,
        aiohttp.ClientSession() as http,
        _streaming(sim, "/ws/btcusdt@aggTrade") as reader,
    ):
        t0 = time.monotonic()
        await reader.wait(lambda: time.monotonic() - t0 > 2.5, within=4)
        got = _complete_ticks(reader.data())
        assert len(got) > 5  # the synthetic rate swings with volatility: calm seconds are quiet
        by_id = await _truth(
            http, sim, venue="binance", symbol="BTCUSDT", kind="aggTrades", from_id=got[0]["a"], to_id=got[-1]["a"]
        )
        by_time = await _truth(http, sim, symbol="BTCUSDT", kind="aggTrades", start_ms=got[0]["T"], end_ms=got[-1]["T"])
    expected = [{k: f[k] for k in ("a", "p", "q", "f", "l", "T", "m", "M")} for f in got]
    assert by_id == expected
    assert by_time == expected


async def test_truth_matches_received_trades() -> None:
    """/_sim/truth kind=trades, by ids and by times, equals exactly what a client received over @trade."""
    async with (
        Simulator(sim_config()) as sim,
        aiohttp.ClientSession() as http,
        _streaming(sim, "/stream?streams=ethusdt@trade") as reader,
    ):
        t0 = time.monotonic()
        await reader.wait(lambda: time.monotonic() - t0 > 2.5, within=4)
        got = _complete_ticks([f["data"] for f in reader.data()])
        assert len(got) > 5
        by_id = await _truth(http, sim, symbol="ETHUSDT", kind="trades", from_id=got[0]["t"], to_id=got[-1]["t"])
        by_time = await _truth(http, sim, symbol="ETHUSDT", kind="trades", start_ms=got[0]["T"], end_ms=got[-1]["T"])
        default_kind = await _truth(http, sim, symbol="ETHUSDT", from_id=got[0]["t"], to_id=got[0]["t"])
    expected = [{"id": f["t"], "price": f["p"], "qty": f["q"], "time": f["T"], "isBuyerMaker": f["m"]} for f in got]
    for rows in (by_id, by_time):
        assert [{k: r[k] for k in ("id", "price", "qty", "time", "isBuyerMaker")} for r in rows] == expected
        assert all(r["isBestMatch"] is True for r in rows)
        assert all(list(r) == ["id", "price", "qty", "quoteQty", "time", "isBuyerMaker", "isBestMatch"] for r in rows)
    assert default_kind == by_id[:1]


async def test_ws_drop_close_for_seconds_keeps_the_venue_down() -> None:
    """mode=close (or reset) with seconds=N closes the sockets and refuses reconnects for those N seconds,
    so the outage really lasts N seconds; no trade is lost from the truth meanwhile."""
    async with Simulator(sim_config()) as sim, aiohttp.ClientSession() as http:
        async with websockets.connect(f"{sim.ws_url}/ws/btcusdt@trade") as ws:
            before = json.loads(await asyncio.wait_for(ws.recv(), 3))["t"]
            status, _ = await _post(http, f"{sim.url}/_sim/ws/drop", {"mode": "reset", "seconds": 0.8})
            started = time.monotonic()
            assert status == 200
            await _until_closed(ws)
        assert await _try_connect(f"{sim.ws_url}/ws/btcusdt@trade") == 503
        while isinstance(frame := await _try_connect(f"{sim.ws_url}/ws/btcusdt@trade"), int):
            assert frame == 503
            assert time.monotonic() - started < 3, "still refused long after the outage"
            await asyncio.sleep(0.05)
        assert time.monotonic() - started >= 0.7
        after = frame["t"]
        truth = await (
            await http.get(
                f"{sim.url}/_sim/truth",
                params={"symbol": "BTCUSDT", "kind": "trades", "from_id": before, "to_id": after},
            )
        ).text()
        ids = [json.loads(line)["id"] for line in truth.splitlines()]
        assert ids == list(range(before, after + 1))

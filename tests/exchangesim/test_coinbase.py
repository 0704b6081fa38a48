"""The Coinbase Exchange venue under /coinbase: REST shapes, cursor paging and its headers, candles,
the public rate limit, errors, and the feed (subscribe deadline, last_match, match, heartbeat)."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import aiohttp
import pytest

from exchangesim.server import Simulator
from tests.conftest import sim_config

ISO_US = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")
UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


async def cb_get(http: aiohttp.ClientSession, sim: Simulator, path: str, **params: object) -> tuple[int, Any, Any]:
    """GET a Coinbase path, waiting out the public rate limit (a 429) like a polite client."""
    for _ in range(50):
        async with http.get(f"{sim.venue_url('coinbase')}{path}", params={k: str(v) for k, v in params.items()}) as r:
            if r.status != 429:
                return r.status, await r.json(), r.headers
        await asyncio.sleep(0.1)
    raise AssertionError("still rate limited")


async def truth(http: aiohttp.ClientSession, sim: Simulator, **params: object) -> list[dict[str, Any]]:
    async with http.get(f"{sim.url}/_sim/truth", params={k: str(v) for k, v in params.items()}) as r:
        assert r.status == 200, await r.text()
        return [json.loads(line) for line in (await r.text()).splitlines() if line]


@pytest.fixture
async def cb() -> AsyncIterator[tuple[Simulator, aiohttp.ClientSession]]:
    async with Simulator(sim_config()) as sim, aiohttp.ClientSession() as http:
        yield sim, http


# -- REST -------------------------------------------------------------------------------------------------
async def test_products_product_and_time(cb: tuple[Simulator, aiohttp.ClientSession]) -> None:
    """/products lists BTC-USD and ETH-USD with Coinbase's fields and increments; /products/{id} is one of
    them; /time is ISO with ms and a float epoch in seconds; unknown products and paths are 404 NotFound."""
    sim, http = cb
    st, products, _ = await cb_get(http, sim, "/products")
    assert st == 200
    by_id = {p["id"]: p for p in products}
    assert set(by_id) == {"BTC-USD", "ETH-USD"}
    btc = by_id["BTC-USD"]
    assert {
        k: btc[k]
        for k in (
            "base_currency",
            "quote_currency",
            "quote_increment",
            "base_increment",
            "display_name",
            "min_market_funds",
            "status",
        )
    } == {
        "base_currency": "BTC",
        "quote_currency": "USD",
        "quote_increment": "0.01",
        "base_increment": "0.00000001",
        "display_name": "BTC/USD",
        "min_market_funds": "1",
        "status": "online",
    }
    assert by_id["ETH-USD"]["quote_increment"] == "0.01"
    assert (await cb_get(http, sim, "/products/ETH-USD"))[1] == by_id["ETH-USD"]
    st, body, _ = await cb_get(http, sim, "/time")
    assert st == 200
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", body["iso"])
    assert isinstance(body["epoch"], float)
    iso_ms = datetime.fromisoformat(body["iso"].replace("Z", "+00:00")).timestamp()
    assert abs(iso_ms - body["epoch"]) < 0.002
    assert abs(body["epoch"] - time.time()) < 5
    for path in ("/products/DOGE-EUR", "/products/DOGE-EUR/trades", "/nothing/here"):
        assert (await cb_get(http, sim, path))[:2] == (404, {"message": "NotFound"})


async def test_trades_shape_order_and_headers(cb: tuple[Simulator, aiohttp.ClientSession]) -> None:
    """Trades come newest first with consecutive ids, string prices (8 decimals) and sizes, ISO times with
    microseconds, the MAKER side; CB-BEFORE is the newest id and CB-AFTER the oldest; limit defaults to
    1000 and outside 1..1000 is a 400."""
    sim, http = cb
    st, rows, headers = await cb_get(http, sim, "/products/BTC-USD/trades", limit=50)
    assert st == 200
    assert len(rows) == 50
    assert list(rows[0]) == ["time", "trade_id", "price", "size", "side"]
    ids = [r["trade_id"] for r in rows]
    assert ids == list(range(ids[0], ids[0] - 50, -1))
    assert (headers["CB-BEFORE"], headers["CB-AFTER"]) == (str(ids[0]), str(ids[-1]))
    assert all(ISO_US.fullmatch(r["time"]) for r in rows)
    assert [r["time"] for r in rows] == sorted((r["time"] for r in rows), reverse=True)
    assert all(re.fullmatch(r"\d+\.\d{8}", r["price"]) and re.fullmatch(r"\d+\.\d{8}", r["size"]) for r in rows)
    assert all(Decimal(r["price"]) == Decimal(r["price"]).quantize(Decimal("0.01")) for r in rows)
    truth_rows = {
        t["trade_id"]: t
        for t in await truth(http, sim, venue="coinbase", symbol="BTC-USD", from_id=ids[-1], to_id=ids[0])
    }
    for r in rows:  # the maker side is the opposite of the taker's
        assert r["side"] == {"buy": "sell", "sell": "buy"}[truth_rows[r["trade_id"]]["taker_side"]]
    assert len((await cb_get(http, sim, "/products/BTC-USD/trades"))[1]) == 1000
    for bad in ({"limit": 0}, {"limit": 1001}, {"limit": "x"}, {"after": "abc"}, {"before": "-"}):
        st, body, _ = await cb_get(http, sim, "/products/BTC-USD/trades", **bad)
        assert st == 400
        assert list(body) == ["message"]


async def test_cursor_paging_has_no_gap_or_duplicate(cb: tuple[Simulator, aiohttp.ClientSession]) -> None:
    """Paging older with after=CB-AFTER and then newer with before=CB-BEFORE walks a range of ids with no
    id missing or repeated; after=N returns the trades just below N, before=N those just above N; both
    bound the page; the pages equal the truth."""
    sim, http = cb
    _, first, headers = await cb_get(http, sim, "/products/ETH-USD/trades", limit=1000)
    seen = [r["trade_id"] for r in first]
    cursor = headers["CB-AFTER"]
    for _ in range(3):
        _, page, headers = await cb_get(http, sim, "/products/ETH-USD/trades", after=cursor, limit=1000)
        assert page[0]["trade_id"] == int(cursor) - 1
        seen += [r["trade_id"] for r in page]
        cursor = headers["CB-AFTER"]
    assert seen == list(range(seen[0], seen[0] - 4000, -1))
    oldest = seen[-1]
    forward: list[int] = []
    cursor = str(oldest - 1)
    while len(forward) < 3500:
        _, page, headers = await cb_get(http, sim, "/products/ETH-USD/trades", before=cursor, limit=700)
        assert page[-1]["trade_id"] == int(cursor) + 1, "before=N starts right above N"
        forward += [r["trade_id"] for r in page][::-1]
        cursor = headers["CB-BEFORE"]
    assert forward == list(range(oldest, oldest + len(forward)))
    _, page, _ = await cb_get(http, sim, "/products/ETH-USD/trades", after=oldest + 100, before=oldest + 10)
    assert [r["trade_id"] for r in page] == list(range(oldest + 99, oldest + 10, -1))
    rows = await truth(http, sim, venue="coinbase", symbol="ETH-USD", from_id=oldest, to_id=oldest + 999)
    _, page, _ = await cb_get(http, sim, "/products/ETH-USD/trades", after=oldest + 1000)
    assert page[::-1] == [{k: r[k] for k in ("time", "trade_id", "price", "size", "side")} for r in rows]
    _, empty, headers = await cb_get(http, sim, "/products/ETH-USD/trades", after=1)
    assert empty == []
    assert "CB-AFTER" not in headers


async def test_candles_shape_order_and_values() -> None:
    """Candles are [time s, low, high, open, close, volume] numbers, newest first, equal to the OHLCV of the
    truth's trades per bucket; a bucket without trades is left out. The window straddles the start of the
    simulator's history, so its first 100 minutes are quiet by construction (no seeded luck, no date)."""
    async with Simulator(sim_config(rate=0.3)) as sim, aiohttp.ClientSession() as http:
        start_s = sim.market.hist_from // 1000 - 100 * 60
        end_s = start_s + 299 * 60
        st, rows, _ = await cb_get(
            http,
            sim,
            "/products/BTC-USD/candles",
            granularity=60,
            start=datetime.fromtimestamp(start_s, UTC).isoformat().replace("+00:00", "Z"),
            end=end_s,
        )
        trades = await truth(
            http, sim, venue="coinbase", symbol="BTC-USD", start_ms=start_s * 1000, end_ms=end_s * 1000 + 59_999
        )
    assert st == 200
    assert all(len(r) == 6 and isinstance(r[0], int) and all(isinstance(v, float) for v in r[1:]) for r in rows)
    times = [r[0] for r in rows]
    assert times == sorted(times, reverse=True)
    buckets: dict[int, list[dict[str, Any]]] = {}
    for t in trades:
        buckets.setdefault(t["time_ms"] // 60_000 * 60, []).append(t)
    assert buckets, "the simulator's history has trades in the window's last 200 minutes"
    assert min(buckets) >= sim.market.hist_from // 1000, "no trade before the history starts"
    assert times == sorted(buckets, reverse=True), "one candle per bucket with trades, none for quiet ones"
    assert len(times) <= 200, "the 100 minutes before the history have no candle"
    for r in rows:
        b = buckets[r[0]]
        prices = [float(t["price"]) for t in b]
        assert r[1:5] == [min(prices), max(prices), prices[0], prices[-1]]
        assert r[5] == pytest.approx(float(sum(Decimal(t["size"]) for t in b)), abs=1e-8)


async def test_candle_parameters(cb: tuple[Simulator, aiohttp.ClientSession]) -> None:
    """granularity outside the six allowed is a 400; more than 300 buckets is a 400; without start/end the
    300 buckets ending now; unix seconds and ISO-8601 give the same answer; every granularity works."""
    sim, http = cb
    path = "/products/BTC-USD/candles"
    for g in (0, 61, 120, "1m"):
        st, body, _ = await cb_get(http, sim, path, granularity=g)
        assert (st, body) == (400, {"message": "Unsupported granularity"})
    now_s = int(time.time())
    st, body, _ = await cb_get(http, sim, path, granularity=60, start=now_s - 301 * 60, end=now_s)
    assert st == 400
    assert "exceeds 300" in body["message"]
    before = int(time.time()) // 60 * 60
    st, rows, _ = await cb_get(http, sim, path, granularity=60)
    after = int(time.time()) // 60 * 60
    assert st == 200
    # The window is the 300 minutes ending with the engine's current one, which lags the clock by a tick; that
    # minute has no candle yet when none of its trades is out (the first milliseconds of a minute).
    opens = [r[0] for r in rows]
    assert before - 60 - 299 * 60 <= opens[-1] <= after - 299 * 60
    assert opens == list(range(opens[-1] + 60 * (len(opens) - 1), opens[-1] - 1, -60))
    assert len(rows) in (299, 300)
    start = now_s // 60 * 60 - 3600
    iso = {k: datetime.fromtimestamp(v, UTC).isoformat() for k, v in (("start", start), ("end", start + 1800))}
    by_s = (await cb_get(http, sim, path, granularity=300, start=start, end=start + 1800))[1]
    assert by_s == (await cb_get(http, sim, path, granularity=300, **iso))[1]
    assert [r[0] for r in by_s] == list(range(start // 300 * 300 + 1800, start // 300 * 300 - 1, -300))
    for g in (900, 3600, 21600, 86400):
        st, rows, _ = await cb_get(http, sim, path, granularity=g)
        assert st == 200
        assert rows
        assert all(r[0] % g == 0 for r in rows)
    for bad in ({"start": "yesterday", "end": now_s}, {"start": now_s, "end": now_s - 60}):
        assert (await cb_get(http, sim, path, granularity=60, **bad))[0] == 400


async def test_public_rate_limit_is_a_token_bucket(cb: tuple[Simulator, aiohttp.ClientSession]) -> None:
    """A burst of 15 requests passes, the next ones are 429 {"message": ...}; tokens come back at 10/s."""
    sim, http = cb
    statuses = []
    for _ in range(25):
        async with http.get(f"{sim.venue_url('coinbase')}/time") as r:
            statuses.append(r.status)
            if r.status == 429:
                assert list(await r.json()) == ["message"]
    assert statuses[:15] == [200] * 15
    assert statuses.count(429) >= 5
    await asyncio.sleep(0.35)  # the limit is a rate: nothing to wait for but the clock
    async with http.get(f"{sim.venue_url('coinbase')}/time") as r:
        assert r.status == 200
    async with http.get(f"{sim.url}/_sim/status") as r:
        assert (await r.json())["faults_injected"]["coinbase_429"] >= 5
    async with http.get(f"{sim.url}/api/v3/time") as r:
        assert r.status == 200, "Binance has its own limits"

"""Third-party clients cannot tell the simulator from Binance except by its URL."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import ccxt.async_support as ccxt_async
import ccxt.pro as ccxtpro
import pytest
from binance import AsyncClient
from binance.exceptions import BinanceAPIException

from exchangesim.server import Simulator
from tests.conftest import API_KEY, API_SECRET

SPOT_ONLY = {"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False, "fetchMargins": False}


async def binance_client(sim: Simulator, key: str = API_KEY, secret: str = API_SECRET) -> AsyncClient:
    """python-binance's AsyncClient pointed at the simulator by overriding API_URL only."""

    class SimClient(AsyncClient):
        API_URL = f"{sim.url}/api"

    return await SimClient.create(key, secret)


def ccxt_exchange(cls: type, sim: Simulator, **extra: object) -> object:
    """A ccxt binance with only its URLs changed (spot-only options, as for any spot-only venue)."""
    ex = cls({"apiKey": API_KEY, "secret": API_SECRET, "options": dict(SPOT_ONLY), **extra})
    ex.urls["api"]["public"] = f"{sim.url}/api/v3"
    ex.urls["api"]["private"] = f"{sim.url}/api/v3"
    if "ws" in ex.urls["api"]:  # ccxt.pro only
        ex.urls["api"]["ws"]["spot"] = f"{sim.ws_url}/ws"
    return ex


async def test_python_binance_market_data(sim: Simulator) -> None:
    """AsyncClient gets exchangeInfo, klines and aggTrades in Binance's exact shapes."""
    client = await binance_client(sim)
    try:
        info = await client.get_exchange_info()
        symbols = {s["symbol"]: s for s in info["symbols"]}
        assert set(symbols) == {"BTCUSDT", "ETHUSDT"}
        filters = {f["filterType"]: f for f in symbols["BTCUSDT"]["filters"]}
        assert filters["PRICE_FILTER"]["tickSize"] == "0.01000000"
        assert filters["LOT_SIZE"]["stepSize"] == "0.00001000"
        assert {"NOTIONAL", "LOT_SIZE", "PRICE_FILTER"} <= set(filters)
        assert info["rateLimits"][0] == {
            "rateLimitType": "REQUEST_WEIGHT",
            "interval": "MINUTE",
            "intervalNum": 1,
            "limit": 6000,
        }
        assert client.response.headers["X-MBX-USED-WEIGHT-1M"].isdigit()

        klines = await client.get_klines(symbol="BTCUSDT", interval="1m", limit=5)
        assert len(klines) == 5
        for row in klines:
            assert len(row) == 12
            assert all(isinstance(row[i], int) for i in (0, 6, 8))
            assert all(isinstance(row[i], str) for i in (1, 2, 3, 4, 5, 7, 9, 10, 11))
            assert row[6] == row[0] + 59_999
            assert Decimal(row[3]) <= Decimal(row[1]) <= Decimal(row[2])
        assert [k[0] for k in klines] == sorted(k[0] for k in klines)

        aggs = await client.get_aggregate_trades(symbol="BTCUSDT", limit=50)
        assert len(aggs) == 50
        assert list(aggs[0]) == ["a", "p", "q", "f", "l", "T", "m", "M"]
        assert [a["a"] for a in aggs] == list(range(aggs[0]["a"], aggs[0]["a"] + 50))
        from_id = await client.get_aggregate_trades(symbol="BTCUSDT", fromId=aggs[10]["a"], limit=5)
        assert from_id == aggs[10:15]
    finally:
        await client.close_connection()


@pytest.mark.slow
async def test_python_binance_historical_klines_pages(sim: Simulator) -> None:
    """get_historical_klines walks several 1000-row pages with no gap and no duplicate."""
    client = await binance_client(sim)
    try:
        # the last whole minute: the current one has a kline only once a trade of it is out (a busy machine can
        # start this test in the first milliseconds of a minute, before the engine's next tick)
        end = int(time.time() * 1000) // 60_000 * 60_000 - 60_000
        start = end - 2_300 * 60_000  # 2,300 minutes: three pages (history starts at the UTC day minus a day)
        rows = await client.get_historical_klines("BTCUSDT", "1m", start_str=start, end_str=end)
        first_valid = rows[0][0]
        opens = [r[0] for r in rows]
        assert opens == list(range(first_valid, opens[-1] + 1, 60_000))
        assert opens[-1] == end
        assert len(rows) > 1000  # more than one page was needed
        assert sim.binance.requests["/api/v3/klines"] >= 3  # the earliest-timestamp probe plus >= 2 pages
    finally:
        await client.close_connection()


async def test_python_binance_signed_market_order(sim: Simulator) -> None:
    """A signed MARKET order with the configured key comes back FILLED with its fills."""
    client = await binance_client(sim)
    try:
        before = {b["asset"]: Decimal(b["free"]) for b in (await client.get_account())["balances"]}
        order = await client.create_order(symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.01")
        assert order["status"] == "FILLED"
        assert order["type"] == "MARKET"
        assert order["side"] == "BUY"
        assert order["clientOrderId"].startswith("x-HNA2TXFJ")  # python-binance's own id prefix, kept
        assert order["fills"], "a FULL response lists its fills"
        fill = order["fills"][0]
        assert set(fill) == {"price", "qty", "commission", "commissionAsset", "tradeId"}
        assert Decimal(order["executedQty"]) == Decimal("0.01")
        assert Decimal(order["cummulativeQuoteQty"]) == Decimal(fill["price"]) * Decimal("0.01")
        after = {b["asset"]: Decimal(b["free"]) for b in (await client.get_account())["balances"]}
        assert after["USDT"] == before["USDT"] - Decimal(order["cummulativeQuoteQty"])
        assert after["BTC"] == before["BTC"] + Decimal("0.01") - Decimal(fill["commission"])
        looked_up = await client.get_order(symbol="BTCUSDT", origClientOrderId=order["clientOrderId"])
        assert looked_up["orderId"] == order["orderId"]
        assert looked_up["status"] == "FILLED"
    finally:
        await client.close_connection()


async def test_python_binance_wrong_secret(sim: Simulator) -> None:
    """A wrong secret is refused with BinanceAPIException -1022 and no order is placed."""
    client = await binance_client(sim, secret="not-the-secret")
    try:
        with pytest.raises(BinanceAPIException) as info:
            await client.create_order(symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.01")
        assert info.value.code == -1022
        assert info.value.message == "Signature for this request is not valid."
        assert not sim.binance.orders.accounts[API_KEY].orders
    finally:
        await client.close_connection()


async def test_ccxt_rest(sim: Simulator) -> None:
    """ccxt's binance runs load_markets, fetch_ohlcv, fetch_trades and create_order unchanged."""
    ex = ccxt_exchange(ccxt_async.binance, sim)
    try:
        markets = await ex.load_markets()
        assert "BTC/USDT" in markets
        assert markets["BTC/USDT"]["id"] == "BTCUSDT"
        assert markets["BTC/USDT"]["precision"]["price"] == pytest.approx(0.01)
        ohlcv = await ex.fetch_ohlcv("BTC/USDT", "1m", limit=10)
        assert len(ohlcv) == 10
        assert all(len(c) == 6 for c in ohlcv)
        assert all(c[3] <= c[1] <= c[2] and c[3] <= c[4] <= c[2] for c in ohlcv)
        trades = await ex.fetch_trades("BTC/USDT", limit=20)
        assert len(trades) == 20
        assert {t["side"] for t in trades} <= {"buy", "sell"}
        assert all(t["symbol"] == "BTC/USDT" and t["price"] > 0 for t in trades)
        order = await ex.create_order("BTC/USDT", "market", "buy", 0.01)
        assert order["status"] == "closed"
        assert order["filled"] == pytest.approx(0.01)
        assert order["trades"]
        assert order["clientOrderId"]
        balance = await ex.fetch_balance()
        assert balance["BTC"]["free"] > 2.0
    finally:
        await ex.close()


async def test_ccxt_pro_watch_trades(sim: Simulator) -> None:
    """ccxt.pro's watch_trades subscribes over /ws/<n> and receives trades with contiguous ids."""
    ex = ccxt_exchange(ccxtpro.binance, sim)
    try:
        await ex.load_markets()
        seen: list[dict] = []
        deadline = time.monotonic() + 10
        while len(seen) < 20 and time.monotonic() < deadline:
            seen.extend(await asyncio.wait_for(ex.watch_trades("BTC/USDT"), 5))
        assert len(seen) >= 20
        ids = [int(t["id"]) for t in seen]
        assert ids == sorted(ids)
        assert all(t["symbol"] == "BTC/USDT" for t in seen)
        assert any("@trade" in s or "@aggTrade" in s for s in sim.binance.status()["subscriptions"])
    finally:
        await ex.close()

"""Signed endpoints: Binance's signature, timing, filter, balance and duplicate-order rules."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from decimal import Decimal
from urllib.parse import urlencode

import aiohttp
import pytest
import yarl

from exchangesim.binance.signed import _strip_signature
from exchangesim.server import Simulator
from tests.conftest import API_KEY, API_SECRET


def sign(payload: str, secret: str = API_SECRET) -> str:
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def test_reference_signature_vector() -> None:
    """The HMAC of the documented payload is the documented signature (and stripping keeps the payload)."""
    secret = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
    payload = (
        "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559"
    )
    assert sign(payload, secret) == "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
    assert _strip_signature(payload + "&signature=abc") == (payload, "abc")
    assert _strip_signature("signature=abc&" + payload) == (payload, "abc")


async def call(
    session: aiohttp.ClientSession,
    sim: Simulator,
    method: str,
    path: str,
    params: dict,
    *,
    in_body: bool = False,
    key: str = API_KEY,
    secret: str = API_SECRET,
    timestamp: int | None = None,
) -> tuple[int, dict]:
    """A signed request built by hand: parameters in the query string or the form body."""
    params = {**params, "timestamp": timestamp if timestamp is not None else int(time.time() * 1000)}
    payload = urlencode(params)
    signed = f"{payload}&signature={sign(payload, secret)}"
    url = f"{sim.url}{path}"
    headers = {"X-MBX-APIKEY": key}
    if in_body:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        resp = await session.request(method, url, data=signed, headers=headers)
    else:
        resp = await session.request(method, yarl.URL(f"{url}?{signed}", encoded=True), headers=headers)
    async with resp:
        return resp.status, await resp.json()


async def last_price(session: aiohttp.ClientSession, sim: Simulator) -> Decimal:
    async with session.get(f"{sim.url}/api/v3/ticker/price", params={"symbol": "BTCUSDT"}) as r:
        return Decimal((await r.json())["price"])


async def test_limit_order_rests_then_fills_when_market_crosses(sim: Simulator) -> None:
    """A LIMIT BUY above the market fills at once; one below rests (funds locked) and can be cancelled."""
    async with aiohttp.ClientSession() as s:
        px = await last_price(s, sim)
        status, taker = await call(
            s,
            sim,
            "POST",
            "/api/v3/order",
            {
                "symbol": "BTCUSDT",
                "side": "BUY",
                "type": "LIMIT",
                "timeInForce": "GTC",
                "quantity": "0.001",
                "price": str((px * Decimal("1.05")).quantize(Decimal("0.01"))),
            },
            in_body=True,
        )
        assert status == 200, taker
        assert taker["status"] == "FILLED", taker
        low = (px * Decimal("0.5")).quantize(Decimal("0.01"))
        status, resting = await call(
            s,
            sim,
            "POST",
            "/api/v3/order",
            {
                "symbol": "BTCUSDT",
                "side": "BUY",
                "type": "LIMIT",
                "timeInForce": "GTC",
                "quantity": "0.01",
                "price": str(low),
                "newClientOrderId": "rest-1",
            },
        )
        assert status == 200
        assert resting["status"] == "NEW"
        _, account = await call(s, sim, "GET", "/api/v3/account", {})
        usdt = next(b for b in account["balances"] if b["asset"] == "USDT")
        assert Decimal(usdt["locked"]) == low * Decimal("0.01")
        _, open_orders = await call(s, sim, "GET", "/api/v3/openOrders", {"symbol": "BTCUSDT"})
        assert [o["clientOrderId"] for o in open_orders] == ["rest-1"]
        status, dup = await call(
            s,
            sim,
            "POST",
            "/api/v3/order",
            {
                "symbol": "BTCUSDT",
                "side": "BUY",
                "type": "LIMIT",
                "timeInForce": "GTC",
                "quantity": "0.01",
                "price": str(low),
                "newClientOrderId": "rest-1",
            },
        )
        assert (status, dup) == (400, {"code": -2010, "msg": "Duplicate order sent."})
        status, cancelled = await call(
            s, sim, "DELETE", "/api/v3/order", {"symbol": "BTCUSDT", "origClientOrderId": "rest-1"}
        )
        assert status == 200
        assert cancelled["status"] == "CANCELED"
        _, account = await call(s, sim, "GET", "/api/v3/account", {})
        usdt = next(b for b in account["balances"] if b["asset"] == "USDT")
        assert Decimal(usdt["locked"]) == 0
        status, again = await call(s, sim, "DELETE", "/api/v3/order", {"symbol": "BTCUSDT", "orderId": 999999})
        assert (status, again["code"]) == (400, -2011)


async def test_resting_sell_fills_when_the_market_trades_through(sim: Simulator) -> None:
    """A LIMIT SELL 0.1 % above the market rests, and fills once a print reaches its price: the prints are made
    to jump 0.5 % up for a few seconds (the outlier control), rather than waited for from the seeded random walk
    (which on some days did not come back up within 20 s)."""
    async with aiohttp.ClientSession() as s:
        px = await last_price(s, sim)
        price = (px * Decimal("1.001")).quantize(Decimal("0.01"))  # beyond where the next prints can reach
        _, order = await call(
            s,
            sim,
            "POST",
            "/api/v3/order",
            {
                "symbol": "BTCUSDT",
                "side": "SELL",
                "type": "LIMIT",
                "timeInForce": "GTC",
                "quantity": "0.001",
                "price": str(price),
            },
        )
        assert order["status"] == "NEW"
        async with s.post(
            f"{sim.url}/_sim/venue/outlier", json={"venue": "binance", "symbol": "BTCUSDT", "bps": 50, "seconds": 3}
        ) as r:
            assert r.status == 200, await r.text()
        deadline = time.monotonic() + 20
        status = "NEW"
        while status == "NEW" and time.monotonic() < deadline:
            _, got = await call(s, sim, "GET", "/api/v3/order", {"symbol": "BTCUSDT", "orderId": order["orderId"]})
            status = got["status"]
            await asyncio.sleep(0.05)  # each poll weighs 4: a tight loop would run into the weight limit
        assert status == "FILLED"
        assert Decimal(got["executedQty"]) == Decimal("0.001")
        assert Decimal(got["cummulativeQuoteQty"]) == price * Decimal("0.001")


async def sim_market(s: aiohttp.ClientSession, sim: Simulator, **body: object) -> None:
    async with s.post(f"{sim.url}/_sim/market", json=body) as r:
        assert r.status == 200


@pytest.mark.parametrize(
    ("params", "code", "msg"),
    [
        ({"quantity": "0.000001"}, -1013, "Filter failure: LOT_SIZE"),
        ({"quantity": "0.00001"}, -1013, "Filter failure: NOTIONAL"),
        ({"quantity": "0.000011"}, -1013, "Filter failure: LOT_SIZE"),
        ({"quantity": "1000"}, -2010, "Account has insufficient balance for requested action."),
        ({"quantity": "0.0010000001"}, -1111, "Parameter 'quantity' has too much precision."),
        ({"quantity": "abc"}, -1100, None),
        ({"side": "HOLD", "quantity": "0.01"}, -1117, "Invalid side."),
        ({"type": "ICEBERG", "quantity": "0.01"}, -1116, "Invalid orderType."),
        ({}, -1102, "Param 'quantity' or 'quoteOrderQty' must be sent, but both were empty/null!"),
        (
            {"type": "LIMIT", "timeInForce": "GTC", "price": "100"},
            -1102,
            "Mandatory parameter 'quantity' was not sent, was empty/null, or malformed.",
        ),
        ({"symbol": "NOPE", "quantity": "0.01"}, -1121, "Invalid symbol."),
        (
            {"type": "LIMIT", "quantity": "0.01", "price": "1.001", "timeInForce": "GTC"},
            -1013,
            "Filter failure: PRICE_FILTER",
        ),
        (
            {"type": "LIMIT", "quantity": "0.01", "price": "100"},
            -1102,
            "Mandatory parameter 'timeInForce' was not sent, was empty/null, or malformed.",
        ),
        ({"newClientOrderId": "bad id!", "quantity": "0.01"}, -1100, None),
    ],
)
async def test_order_rejections(sim: Simulator, params: dict, code: int, msg: str | None) -> None:
    """Invalid orders are rejected with Binance's code and message and change no balance."""
    base = {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET"}
    async with aiohttp.ClientSession() as s:
        status, body = await call(s, sim, "POST", "/api/v3/order", {**base, **params})
    assert status == 400
    assert body["code"] == code
    if msg is not None:
        assert body["msg"] == msg
    account = sim.binance.orders.accounts[API_KEY]
    assert not account.orders
    assert account.free["USDT"] == Decimal(100_000)


async def test_timing_rules(sim: Simulator) -> None:
    """-1021 for a timestamp 1 s ahead or older than recvWindow; a skewed server clock is honoured."""
    async with aiohttp.ClientSession() as s:
        now = int(time.time() * 1000)
        status, ahead = await call(s, sim, "GET", "/api/v3/account", {}, timestamp=now + 2000)
        assert (status, ahead["code"]) == (400, -1021)
        assert ahead["msg"] == "Timestamp for this request was 1000ms ahead of the server's time."
        status, old = await call(s, sim, "GET", "/api/v3/account", {}, timestamp=now - 6000)
        assert (status, old["msg"]) == (400, "Timestamp for this request is outside of the recvWindow.")
        status, ok = await call(s, sim, "GET", "/api/v3/account", {"recvWindow": 10000}, timestamp=now - 6000)
        assert status == 200
        assert ok["accountType"] == "SPOT"
        status, big = await call(s, sim, "GET", "/api/v3/account", {"recvWindow": 70000})
        assert (status, big["code"]) == (400, -1131)
        async with s.post(f"{sim.url}/_sim/config", json={"clock_offset_ms": -3000}) as r:
            assert r.status == 200
        status, skewed = await call(s, sim, "GET", "/api/v3/account", {})
        assert (status, skewed["code"]) == (400, -1021)  # our clock is now 3 s ahead of the server's
        async with s.get(f"{sim.url}/api/v3/time") as r:
            server = (await r.json())["serverTime"]
        assert int(time.time() * 1000) - server >= 2900
        status, _fixed = await call(s, sim, "GET", "/api/v3/account", {}, timestamp=server)
        assert status == 200


async def test_key_and_signature_errors(sim: Simulator) -> None:
    """Missing key -2014, unknown key -2015 (HTTP 401), wrong secret -1022, no signature -1102."""
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{sim.url}/api/v3/account", params={"timestamp": 1}) as r:
            assert (r.status, (await r.json())["code"]) == (401, -2014)
        status, body = await call(s, sim, "GET", "/api/v3/account", {}, key="someoneElse")
        assert (status, body["code"]) == (401, -2015)
        status, body = await call(s, sim, "GET", "/api/v3/account", {}, secret="wrong")
        assert (status, body) == (400, {"code": -1022, "msg": "Signature for this request is not valid."})
        async with s.get(
            f"{sim.url}/api/v3/account",
            params={"timestamp": int(time.time() * 1000)},
            headers={"X-MBX-APIKEY": API_KEY},
        ) as r:
            body = await r.json()
            assert (r.status, body["code"]) == (400, -1102)
            assert "'signature'" in body["msg"]


async def test_test_order_and_protective_orders(sim: Simulator) -> None:
    """order/test validates without placing; STOP_LOSS_LIMIT and TAKE_PROFIT_LIMIT rest with their stops."""
    async with aiohttp.ClientSession() as s:
        status, body = await call(
            s,
            sim,
            "POST",
            "/api/v3/order/test",
            {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.01"},
        )
        assert (status, body) == (200, {})
        assert not sim.binance.orders.accounts[API_KEY].orders
        px = await last_price(s, sim)
        stop = (px * Decimal("0.9")).quantize(Decimal("0.01"))
        take = (px * Decimal("1.1")).quantize(Decimal("0.01"))
        _, sl = await call(
            s,
            sim,
            "POST",
            "/api/v3/order",
            {
                "symbol": "BTCUSDT",
                "side": "SELL",
                "type": "STOP_LOSS_LIMIT",
                "timeInForce": "GTC",
                "quantity": "0.01",
                "price": str(stop),
                "stopPrice": str(stop),
            },
        )
        _, tp = await call(
            s,
            sim,
            "POST",
            "/api/v3/order",
            {
                "symbol": "BTCUSDT",
                "side": "SELL",
                "type": "TAKE_PROFIT_LIMIT",
                "timeInForce": "GTC",
                "quantity": "0.01",
                "price": str(take),
                "stopPrice": str(take),
            },
        )
        assert list(sl) == ["symbol", "orderId", "orderListId", "clientOrderId", "transactTime"]  # ACK default
        _, got = await call(s, sim, "GET", "/api/v3/order", {"symbol": "BTCUSDT", "orderId": tp["orderId"]})
        assert got["status"] == "NEW"
        assert Decimal(got["stopPrice"]) == take
        _, account = await call(s, sim, "GET", "/api/v3/account", {})
        btc = next(b for b in account["balances"] if b["asset"] == "BTC")
        assert Decimal(btc["locked"]) == Decimal("0.02")


async def test_client_order_id_reuse_after_cancel(sim: Simulator) -> None:
    """A client order id may be reused once its order is done; the open one is the one found and the only
    one a duplicate is checked against."""
    async with aiohttp.ClientSession() as s:
        px = await last_price(s, sim)
        order = {
            "symbol": "BTCUSDT",
            "side": "SELL",
            "type": "LIMIT",
            "timeInForce": "GTC",
            "quantity": "0.001",
            "price": str((px * 2).quantize(Decimal("0.01"))),
            "newClientOrderId": "dupS",
        }
        _, first = await call(s, sim, "POST", "/api/v3/order", order)
        await call(s, sim, "DELETE", "/api/v3/order", {"symbol": "BTCUSDT", "origClientOrderId": "dupS"})
        status, second = await call(s, sim, "POST", "/api/v3/order", order)
        assert status == 200
        assert second["orderId"] != first["orderId"]
        status, third = await call(s, sim, "POST", "/api/v3/order", order)
        assert (status, third) == (400, {"code": -2010, "msg": "Duplicate order sent."})
        _, found = await call(s, sim, "GET", "/api/v3/order", {"symbol": "BTCUSDT", "origClientOrderId": "dupS"})
        assert (found["orderId"], found["status"]) == (second["orderId"], "NEW")
        status, cancelled = await call(
            s, sim, "DELETE", "/api/v3/order", {"symbol": "BTCUSDT", "origClientOrderId": "dupS"}
        )
        assert (status, cancelled["orderId"], cancelled["status"]) == (200, second["orderId"], "CANCELED")
        status, body = await call(s, sim, "DELETE", "/api/v3/order", {"symbol": "NOPE", "orderId": 1})
        assert (status, body["code"]) == (400, -1121)


async def test_stop_market_buy_reserves_for_its_stop(sim: Simulator) -> None:
    """A STOP_LOSS BUY reserves quote at its stop price (it fills there), so a trigger can never drive the
    free balance negative; a stop that would trigger at once is rejected."""
    async with aiohttp.ClientSession() as s:
        px = await last_price(s, sim)
        status, body = await call(
            s,
            sim,
            "POST",
            "/api/v3/order",
            {
                "symbol": "BTCUSDT",
                "side": "BUY",
                "type": "STOP_LOSS",
                "quantity": "0.01",
                "stopPrice": str((px * Decimal("0.99")).quantize(Decimal("0.01"))),
            },
        )
        assert (status, body["code"]) == (400, -2010)
        stop = (px * Decimal("1.5")).quantize(Decimal("0.01"))
        qty = (Decimal(100_000) / px).quantize(Decimal("0.00001"))  # affordable at the market, not at the stop
        status, body = await call(
            s,
            sim,
            "POST",
            "/api/v3/order",
            {"symbol": "BTCUSDT", "side": "BUY", "type": "STOP_LOSS", "quantity": str(qty), "stopPrice": str(stop)},
        )
        assert (status, body["code"]) == (400, -2010)
        assert body["msg"] == "Account has insufficient balance for requested action."
        status, ok = await call(
            s,
            sim,
            "POST",
            "/api/v3/order",
            {"symbol": "BTCUSDT", "side": "BUY", "type": "STOP_LOSS", "quantity": "0.01", "stopPrice": str(stop)},
        )
        assert status == 200
        account = sim.binance.orders.accounts[API_KEY]
        assert account.locked["USDT"] == stop * Decimal("0.01")
        assert list(account.open) == [ok["orderId"]]

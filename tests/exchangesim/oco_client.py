"""Requests and checks shared by the OCO tests: a protective SELL's parameters, signed GETs of an order and an
order list, the account behind the test key, and the book matched against chosen prints.
"""

from __future__ import annotations

import time
from decimal import Decimal
from urllib.parse import urlencode

import aiohttp
import yarl

from exchangesim.binance.records import Account
from exchangesim.server import Simulator
from tests.conftest import API_KEY
from tests.exchangesim.test_signed import call, sign

TICK = Decimal("0.01")  # BTCUSDT's tick size
FEE = Decimal("0.001")
OCO = "/api/v3/orderList/oco"


def account_of(sim: Simulator) -> Account:
    """The simulator's account behind the test API key."""
    return sim.binance.orders.accounts[API_KEY]


def prints(sim: Simulator, low: Decimal, high: Decimal) -> None:
    """The market printed from ``low`` to ``high`` on BTCUSDT: match the resting orders against that."""
    venue = sim.binance
    venue.orders.on_trades(venue.specs, "BTCUSDT", low, high, high, venue.server_time())


def away(px: Decimal, factor: str) -> Decimal:
    """``px`` times ``factor``, on BTCUSDT's tick."""
    return (px * Decimal(factor)).quantize(TICK)


def sell_oco(px: Decimal, qty: Decimal, **params: str) -> dict[str, str]:
    """A protective SELL: take-profit LIMIT_MAKER 5 % above the market, STOP_LOSS 5 % below."""
    return {
        "symbol": "BTCUSDT",
        "side": "SELL",
        "quantity": str(qty),
        "aboveType": "LIMIT_MAKER",
        "abovePrice": str(away(px, "1.05")),
        "belowType": "STOP_LOSS",
        "belowStopPrice": str(away(px, "0.95")),
        **params,
    }


async def call_with_headers(
    s: aiohttp.ClientSession, sim: Simulator, method: str, path: str, params: dict
) -> tuple[int, object, dict[str, str]]:
    """``call`` (parameters signed in the query string), also returning the response headers."""
    payload = urlencode({**params, "timestamp": int(time.time() * 1000)})
    url = yarl.URL(f"{sim.url}{path}?{payload}&signature={sign(payload)}", encoded=True)
    async with s.request(method, url, headers={"X-MBX-APIKEY": API_KEY}) as r:
        return r.status, await r.json(), dict(r.headers)


async def order(s: aiohttp.ClientSession, sim: Simulator, **params: object) -> dict:
    """GET /api/v3/order on BTCUSDT, which must succeed."""
    status, body = await call(s, sim, "GET", "/api/v3/order", {"symbol": "BTCUSDT", **params})
    assert status == 200, body
    return body


async def order_list(s: aiohttp.ClientSession, sim: Simulator, **params: object) -> dict:
    """GET /api/v3/orderList, which must succeed."""
    status, body = await call(s, sim, "GET", "/api/v3/orderList", params)
    assert status == 200, body
    return body

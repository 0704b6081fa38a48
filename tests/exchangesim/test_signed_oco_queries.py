"""Reading orders and OCO lists back: allOrders (OCO legs included) with its selections and weights, and
python-binance's client over the OCO endpoints.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

import aiohttp
import pytest
from binance import Client
from binance.exceptions import BinanceAPIException

from exchangesim.server import Simulator
from tests.conftest import API_KEY, API_SECRET
from tests.exchangesim.oco_client import OCO, account_of, away, call_with_headers, order, sell_oco
from tests.exchangesim.test_signed import call, last_price


async def test_all_orders_lists_every_order_once(sim: Simulator) -> None:
    """allOrders: every order of the symbol (OCO legs included) once, by orderId, in GET order's shape;
    orderId/startTime/endTime/limit select as on Binance; weights 20 (allOrders) and 4 (orderList)."""
    async with aiohttp.ClientSession() as s:
        px = await last_price(s, sim)
        await call(
            s, sim, "POST", "/api/v3/order", {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.01"}
        )
        await call(
            s, sim, "POST", "/api/v3/order", {"symbol": "ETHUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.1"}
        )
        await call(
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
                "price": str(away(px, "0.5")),
            },
        )
        _, oco = await call(s, sim, "POST", OCO, sell_oco(px, Decimal("0.1")))
        await call(s, sim, "DELETE", "/api/v3/orderList", {"symbol": "BTCUSDT", "orderListId": oco["orderListId"]})
        status, everything = await call(s, sim, "GET", "/api/v3/allOrders", {"symbol": "BTCUSDT"})
        assert status == 200, everything
        ids = [o["orderId"] for o in everything]
        assert ids == sorted(set(ids))
        assert len(ids) == 4
        assert [(o["type"], o["status"], o["orderListId"] == -1) for o in everything] == [
            ("MARKET", "FILLED", True),
            ("LIMIT", "NEW", True),
            ("STOP_LOSS", "CANCELED", False),
            ("LIMIT_MAKER", "CANCELED", False),
        ]
        assert everything[1] == await order(s, sim, orderId=ids[1])  # GET order's shape
        _, from_id = await call(
            s, sim, "GET", "/api/v3/allOrders", {"symbol": "BTCUSDT", "orderId": ids[1], "limit": 2}
        )
        assert [o["orderId"] for o in from_id] == ids[1:3]
        _, recent = await call(s, sim, "GET", "/api/v3/allOrders", {"symbol": "BTCUSDT", "limit": 2})
        assert [o["orderId"] for o in recent] == ids[2:]
        now = sim.binance.server_time()
        _, window = await call(
            s, sim, "GET", "/api/v3/allOrders", {"symbol": "BTCUSDT", "startTime": now - 60_000, "endTime": now}
        )
        assert [o["orderId"] for o in window] == ids
        _, later = await call(s, sim, "GET", "/api/v3/allOrders", {"symbol": "BTCUSDT", "startTime": now + 1})
        assert later == []
        status, body = await call(s, sim, "GET", "/api/v3/allOrders", {"symbol": "BTCUSDT", "limit": 1001})
        assert (status, body["code"]) == (400, -1130)
        status, body = await call(s, sim, "GET", "/api/v3/allOrders", {})
        assert (status, body["code"]) == (400, -1102)
        status, body = await call(
            s, sim, "GET", "/api/v3/allOrders", {"symbol": "BTCUSDT", "startTime": now - 2 * 86_400_000, "endTime": now}
        )
        assert (status, body["code"]) == (400, -1127)
        for path, params, weight in (
            ("/api/v3/allOrders", {"symbol": "BTCUSDT"}, 20),
            ("/api/v3/orderList", {"orderListId": oco["orderListId"]}, 4),
            ("/api/v3/openOrderList", {}, 6),
        ):
            assert await weight_of(s, sim, path, params) == weight


async def weight_of(s: aiohttp.ClientSession, sim: Simulator, path: str, params: dict) -> int:
    """What one GET of ``path`` adds to X-MBX-USED-WEIGHT-1M (measured again if a minute starts between)."""
    for _ in range(3):
        _, _, first = await call_with_headers(s, sim, "GET", path, params)
        _, _, second = await call_with_headers(s, sim, "GET", path, params)
        used = int(second["X-MBX-USED-WEIGHT-1M"]) - int(first["X-MBX-USED-WEIGHT-1M"])
        if used > 0:
            return used
    raise AssertionError(f"could not measure the weight of {path}")


async def test_python_binance_client(sim: Simulator) -> None:
    """python-binance's sync Client: create_oco_order, get_order, get_all_orders, get_open_oco_orders, and
    its generic _get/_delete for orderList (it has no named method for them); errors as BinanceAPIException."""
    async with aiohttp.ClientSession() as s:
        px = await last_price(s, sim)
    client = Client(API_KEY, API_SECRET, ping=False)
    client.API_URL = f"{sim.url}/api"

    def run() -> None:
        bought = client.create_order(symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.01")
        created = client.create_oco_order(
            symbol="BTCUSDT",
            side="SELL",
            quantity="0.00999",
            aboveType="LIMIT_MAKER",
            abovePrice=str(away(px, "1.05")),
            belowType="STOP_LOSS_LIMIT",
            belowStopPrice=str(away(px, "0.95")),
            belowPrice=str(away(px, "0.94")),
            belowTimeInForce="GTC",
        )
        assert created["listClientOrderId"].startswith("x-")  # python-binance names the list itself
        assert (created["contingencyType"], created["listOrderStatus"]) == ("OCO", "EXECUTING")
        legs = [o["orderId"] for o in created["orders"]]
        got = client.get_order(symbol="BTCUSDT", orderId=legs[0])
        assert (got["orderListId"], got["type"], got["status"]) == (created["orderListId"], "STOP_LOSS_LIMIT", "NEW")
        assert [o["orderId"] for o in client.get_all_orders(symbol="BTCUSDT")] == [bought["orderId"], *legs]
        assert [lst["orderListId"] for lst in client.get_open_oco_orders()] == [created["orderListId"]]
        listed = client._get("orderList", True, data={"orderListId": created["orderListId"]})
        assert listed["listStatusType"] == "EXEC_STARTED"
        cancelled = client._delete("orderList", True, data={"symbol": "BTCUSDT", "orderListId": created["orderListId"]})
        assert [r["status"] for r in cancelled["orderReports"]] == ["CANCELED", "CANCELED"]
        with pytest.raises(BinanceAPIException) as err:
            client.create_oco_order(
                symbol="BTCUSDT",
                side="SELL",
                quantity="0.00999",
                aboveType="LIMIT_MAKER",
                abovePrice=str(away(px, "0.98")),
                belowType="STOP_LOSS",
                belowStopPrice=str(away(px, "0.95")),
            )
        assert (err.value.code, err.value.message) == (
            -2010,
            "The relationship of the prices for the orders is not correct.",
        )

    await asyncio.to_thread(run)
    acct = account_of(sim)
    assert acct.locked["BTC"] == 0
